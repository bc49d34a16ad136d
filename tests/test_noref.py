import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from conftest import save
from edgeenhance.cli import main
from edgeenhance.noref import bright_drop, clipped_fraction, dark_lift, loe, mean_luminance, newly_clipped, scores


def grey(values, shape):
    return np.repeat(np.array(values, np.float32).reshape(*shape, 1), 3, axis=2)


def test_niqe_ranks_sharp_below_blurred_and_noised():
    from edgeenhance.data.synth import render_pair
    from edgeenhance.niqe import niqe

    rng = np.random.default_rng(0)
    sharp, blurred, noised = [], [], []
    for seed in range(4):  # a mean over scenes: a single flat rendered scene may not suffer from blur
        _, img = render_pair(seed, "under", (384, 384))  # the well-exposed, noise-free target
        sharp.append(niqe(img))
        blurred.append(niqe(gaussian_filter(img, (3, 3, 0))))
        noised.append(niqe(np.clip(img + rng.normal(0, 0.1, img.shape), 0, 1).astype(np.float32)))
    assert 0 < np.mean(sharp) < np.mean(blurred)
    assert all(s < n for s, n in zip(sharp, noised))


def test_niqe_rejects_small_images():
    from edgeenhance.errors import UserError
    from edgeenhance.niqe import niqe

    with pytest.raises(UserError, match="at least 193x193"):
        niqe(np.zeros((150, 400, 3), np.float32))


def test_niqe_matches_reference_features_quirk():
    """Diagonal products repeat the left scale (as the pristine model was fitted), others do not."""
    from edgeenhance.niqe import _scale_features, mscn

    img = np.random.default_rng(1).random((96, 96)).astype(np.float32) * 255
    f = _scale_features(mscn(img), 96)[0]
    assert f.shape == (18,)
    assert f[12] == f[13] and f[16] == f[17] and f[4] != f[5]


def test_loe_zero_for_tone_curve_and_positive_for_inversion():
    x = (np.random.default_rng(0).integers(0, 256, (120, 90, 3)) / 255).astype(np.float32)
    assert loe(x, x ** 0.4) == 0
    assert loe(x, 0.2 + 0.5 * x ** 2.2) == 0
    assert loe(x, 1 - x) > 0


def test_loe_fraction_counts_flipped_pairs():
    from edgeenhance.noref import loe_fraction

    img = grey(np.arange(16) / 16, (4, 4))  # 16 distinct values, each grid pixel kept
    assert loe_fraction(img, img ** 0.5) == 0
    # reversed order: every ordered pair of distinct pixels flips; pairs with itself (16 of 256) never do
    assert loe_fraction(img, 1 - img) == pytest.approx(240 / 256)
    assert loe_fraction(img, 1 - img) == pytest.approx(loe(img, 1 - img) / 16)


def test_scores_hand_computed():
    inp, out = grey([0.1, 0.2, 0.3], (3, 1)), grey([0.5, 0.4, 0.6], (3, 1))
    # pixel 0: only pixel 1 changes order (0.2 >= 0.1, but 0.4 < 0.5); pixel 1: pixel 0 (0.1 < 0.2, 0.5 >= 0.4)
    assert loe(inp, out) == pytest.approx(2 / 3)
    assert dark_lift(inp, out) == pytest.approx(0.4)  # 30% of 3 pixels: the darkest one, 0.1 -> 0.5
    assert dark_lift(inp, out, frac=0.67) == pytest.approx((0.4 + 0.2) / 2)
    assert mean_luminance(out) == pytest.approx(0.5)
    assert bright_drop(inp, out) == pytest.approx(-0.3)  # the brightest one, 0.3 -> 0.6: brighter, not dropped
    assert bright_drop(out, inp) == pytest.approx(0.3)

    a = np.array([[[0.5, 0.5, 0.5], [1.0, 0.2, 0.2]], [[0.3, 0.3, 0.3], [0.1, 0.1, 0.1]]], np.float32)
    b = np.array([[[1.0, 0.9, 0.9], [1.0, 0.9, 0.9]], [[0.3, 254 / 255, 0.3], [0.2, 0.2, 0.2]]], np.float32)
    assert newly_clipped(a, b) == 0.25  # top-left only: top-right was clipped already, 254/255 is not
    assert clipped_fraction(a) == 0.25 and clipped_fraction(b) == 0.5
    s = scores(a, b, with_niqe=False)
    assert s["niqe"] is None and s["new_clipped"] == 0.25 and s["clipped_after"] == 0.5


def test_contact_sheet_grid_and_pixels(tmp_path):
    from PIL import Image

    from edgeenhance.sheet import LABEL_H, PAD, contact_sheet

    rng = np.random.default_rng(0)
    wide = rng.random((20, 40, 3)).astype(np.float32)
    tall = rng.random((40, 10, 3)).astype(np.float32)
    path = contact_sheet([[wide, wide * 0.5, wide], [tall, tall, tall]], ["input", "a", "b"], tmp_path / "s.png",
                         thumb=40)
    im = np.asarray(Image.open(path).convert("RGB"))
    assert im.shape == (LABEL_H + PAD + (20 + PAD) + (40 + PAD), PAD + 3 * (40 + PAD), 3)
    y0 = LABEL_H + PAD
    np.testing.assert_array_equal(im[y0:y0 + 20, PAD:PAD + 40], np.round(wide * 255).astype(np.uint8))
    x1 = PAD + (40 + PAD) + 15  # the tall image is centred in its 40 px column
    np.testing.assert_array_equal(im[y0 + 20 + PAD:y0 + 60 + PAD, x1:x1 + 10], np.round(tall * 255).astype(np.uint8))
    assert im[:LABEL_H].max() > 150  # the labels were drawn
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


@pytest.fixture
def dark_folder(tmp_path):
    from edgeenhance.data.synth import render_pair

    d = tmp_path / "photos"
    for i in range(3):
        save(d / f"p{i}.png", render_pair(i, "under", (200, 208))[0])
    return d


def test_cli_eval_folder_without_targets(dark_folder, tmp_path, capsys):
    from PIL import Image

    from edgeenhance.sheet import PAD

    args = ["eval", "--model", "lime", "--data", str(dark_folder), "--sheet", str(tmp_path / "s.png"),
            "--json", str(tmp_path / "r.json"), "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    lines = {ln.split()[0]: ln for ln in out.splitlines()}
    assert "NIQE" in lines["model"] and "LOE" in lines["model"] and "input" in lines and "lime" in lines
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["n"] == 3 and r["files"] == ["p0.png", "p1.png", "p2.png"]
    keys = {"niqe", "loe", "mean_lum", "dark_lift", "new_clipped", "clipped_before", "clipped_after", "bright_drop",
            "sec_per_image", "n"}
    assert set(r["results"]) == {"input", "lime"}
    assert set(r["results"]["input"]) == keys and set(r["results"]["lime"]) == keys
    inp, lime = r["results"]["input"], r["results"]["lime"]
    assert inp["loe"] == 0 and inp["dark_lift"] == 0 and inp["niqe"] > 0
    assert lime["mean_lum"] > inp["mean_lum"] and lime["dark_lift"] > 0 and lime["niqe"] > 0
    assert Image.open(tmp_path / "s.png").size[0] == PAD + 2 * (256 + PAD)

    assert main(args[:5] + ["--n", "2", "--no-niqe", "--json", str(tmp_path / "r2.json"), "--quiet"]) == 0
    r2 = json.loads((tmp_path / "r2.json").read_text())
    assert r2["n"] == 2 and r2["results"]["lime"]["niqe"] is None


def test_cli_eval_over_exposed_folder_reports_clipping_and_bright_drop(tmp_path, capsys):
    from edgeenhance.data.synth import render_pair

    d = tmp_path / "bright"
    for i in range(2):
        save(d / f"b{i}.png", render_pair(i, "over", (64, 64))[0])
    assert main(["eval", "--model", "tonecomp", "--data", str(d), "--no-niqe", "--quiet",
                 "--json", str(tmp_path / "r.json")]) == 0
    lines = {ln.split()[0]: ln.split() for ln in capsys.readouterr().out.splitlines()}
    head = " ".join(lines["model"])
    assert "bright drop" in head and "clipped %" in head
    r = json.loads((tmp_path / "r.json").read_text())["results"]
    inp, tc = r["input"], r["tonecomp"]
    assert inp["clipped_before"] > 0.01 and tc["clipped_after"] < inp["clipped_before"] and tc["bright_drop"] > 0
    # the printed columns are these numbers: bright drop, clipped % (input row: before), new clip %
    assert float(lines["tonecomp"][5]) == pytest.approx(tc["bright_drop"], abs=6e-4)
    assert float(lines["input"][6]) == pytest.approx(100 * inp["clipped_before"], abs=6e-3)
    assert float(lines["tonecomp"][6]) == pytest.approx(100 * tc["clipped_after"], abs=6e-3)


def test_cli_eval_folder_errors(dark_folder, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["eval", "--model", "lime", "--data", str(tmp_path / "empty"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("edgeenhance: error:") and "no images" in err[0]

    save(tmp_path / "tiny" / "t.png", np.full((40, 300, 3), 0.2, np.float32))
    assert main(["eval", "--model", "lime", "--data", str(tmp_path / "tiny"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "t.png: 300x40 is too small for NIQE" in err and "--no-niqe" in err

    (dark_folder / "zz_bad.png").write_bytes(b"not a png")
    assert main(["eval", "--model", "lime", "--data", str(dark_folder), "--quiet", "--no-niqe"]) == 2
    err = capsys.readouterr().err
    assert "zz_bad.png" in err and "--skip-bad" in err and "Traceback" not in err
    with pytest.warns(UserWarning, match="zz_bad.png"):
        assert main(["eval", "--model", "lime", "--data", str(dark_folder), "--quiet", "--no-niqe", "--skip-bad",
                     "--json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["n"] == 3


def test_cli_eval_paired_sheet_has_target_column(tmp_path, capsys):
    from PIL import Image

    from edgeenhance.sheet import LABEL_H, PAD

    assert main(["eval", "--model", "lime", "--data", "synthetic-under", "--n", "2", "--size", "48",
                 "--sheet", str(tmp_path / "s.png"), "--sheet-rows", "1", "--quiet"]) == 0
    assert "PSNR" in capsys.readouterr().out
    assert Image.open(tmp_path / "s.png").size == (PAD + 3 * (256 + PAD), LABEL_H + PAD + 256 + PAD)
