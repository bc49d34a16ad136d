from pathlib import Path

import numpy as np
import pytest
import torch

from edgeenhance.models.bilateral import BilateralEnhancer, tent_weights
from edgeenhance.models.registry import deploy_forms, load_model
from edgeenhance.models.slicing import fast_slice, reference_slice


def random_model(seed=0, **cfg):
    torch.manual_seed(seed)
    m = BilateralEnhancer(**cfg).eval()
    with torch.no_grad():  # move away from the identity init so slicing matters
        m.gridnet.out.weight.normal_(0, 0.05)
        m.gridnet.out.bias.add_(torch.randn_like(m.gridnet.out.bias) * 0.2)
    return m


def test_identity_at_init():
    m = BilateralEnhancer().eval()
    x = torch.rand(1, 3, 40, 50)
    assert torch.allclose(m(x), x, atol=1e-6)


def test_tent_weights_partition_of_unity():
    g = torch.rand(1, 1, 9, 9)
    w = torch.stack(tent_weights(g, 8))
    assert torch.allclose(w.sum(0), torch.ones_like(g), atol=1e-6)
    assert (w > 0).sum(0).max() <= 2


@pytest.mark.parametrize("size", [(64, 64), (37, 91), (1, 5)])
def test_full_equals_grid_plus_numpy_slicing(size):
    m = random_model()
    x = torch.rand(1, 3, *size)
    with torch.no_grad():
        full = m(x)[0].permute(1, 2, 0).numpy()
        grid = deploy_forms(m)["grid"].module(m.low_res(x))[0].numpy()
    assert np.abs(full - x[0].permute(1, 2, 0).numpy()).max() > 0.05  # the model does change the image
    img = x[0].permute(1, 2, 0).numpy()
    params = deploy_forms(m)["grid"].extras["guide"]
    assert np.abs(reference_slice(img, grid, params) - full).max() < 1e-5
    assert np.abs(fast_slice(img, grid, params) - full).max() < 1e-5


def test_linear_guide_full_equals_grid_plus_numpy_and_fused_slicing():
    """guide_hidden=0: clamp(w . rgb + b, 0, 1), started at luminance; every slicing path agrees with torch."""
    from edgeenhance.runtime.fused_slice import fused_slice

    m = random_model(guide_hidden=0)
    x = torch.rand(1, 3, 37, 91)
    with torch.no_grad():
        lum = (x * torch.tensor([0.2126, 0.7152, 0.0722]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        assert torch.allclose(m.guide(x), lum, atol=1e-6)  # starts at Rec.709 luminance
        m.guide.conv1.bias.fill_(0.3)  # some pixels above 1: the clamp is exercised
        full = m(x)[0].permute(1, 2, 0).numpy()
        grid = m.gridnet(m.low_res(x))[0].numpy()
    params = m.guide_params()
    assert params["guide"] == "linear" and sum(p.numel() for p in m.guide.parameters()) == 4
    img = np.ascontiguousarray(x[0].permute(1, 2, 0).numpy())
    for slicer in (reference_slice, fast_slice, fused_slice):
        assert np.abs(slicer(img, grid, params) - full).max() < 1e-5, slicer.__name__
    # read as an MLP guide (what an old reader would do), the result would differ
    assert np.abs(reference_slice(img, grid, {**params, "guide": "mlp"}) - full).max() > 0.01


def test_any_size_output_keeps_size():
    m = random_model()
    with torch.no_grad():
        assert m(torch.rand(1, 3, 333, 517)).shape == (1, 3, 333, 517)


def test_shipped_weights_load_and_brighten_dark_image():
    from edgeenhance.data.synth import render_pair

    m = load_model("bilateral")
    x, y = render_pair(1_234_567, "under", (128, 128))
    with torch.no_grad():
        out = m(torch.from_numpy(x.transpose(2, 0, 1))[None])[0].numpy().transpose(1, 2, 0)
    assert out.mean() > x.mean() + 0.1
    assert abs(out.mean() - y.mean()) < abs(x.mean() - y.mean())


@pytest.mark.parametrize("guide,name", [("mlp", "slicing_vectors.json"), ("linear", "slicing_vectors_linear.json")])
def test_shared_slicing_vectors_match_numpy_and_fused(guide, name):
    """The vector files that the Android app's unit test reads: Python must agree with them too."""
    import json
    from pathlib import Path

    from edgeenhance.models.slicing import make_test_vectors
    from edgeenhance.runtime.fused_slice import fused_slice

    path = Path(__file__).parents[1] / "android_demo/app/src/test/resources" / name
    v = json.loads(path.read_text())
    fresh = json.loads(json.dumps(make_test_vectors(guide=guide)))  # the file is current: same fields ...
    assert {k: x for k, x in v.items() if k != "expected_hwc"} == {k: x for k, x in fresh.items() if k != "expected_hwc"}
    # ... and the same expected output, to float32 rounding (numpy's SIMD paths differ by CPU: 1 ulp apart
    # between an AVX2 and an AVX-512 host)
    np.testing.assert_allclose(v["expected_hwc"], fresh["expected_hwc"], rtol=0, atol=1e-6)
    img = np.asarray(v["image_hwc"], np.float32)
    g = v["guide"]
    grid = np.asarray(v["network_output_chw"], np.float32) / np.asarray(g["grid_scale"], np.float32)[:, None, None] \
        + np.asarray(g["grid_offset"], np.float32)[:, None, None]
    expected = np.asarray(v["expected_hwc"], np.float32)
    assert np.abs(reference_slice(img, grid, g) - expected).max() < 1e-6
    assert np.abs(fused_slice(img, grid, g) - expected).max() < 1e-5
    assert np.abs(expected - img).max() > 0.05  # the vector exercises a real correction


def test_fast_enhance_matches_the_pytorch_model():
    from edgeenhance.evaluate import enhance_array, fast_enhance

    m = random_model()
    img = np.random.default_rng(1).random((70, 101, 3)).astype(np.float32)
    assert np.abs(fast_enhance(m, img) - enhance_array(m, img)).max() < 1e-5


def test_global_path_with_and_without_strided_convs():
    """global_convs=2 is the first model's (HDRNet's) global path, which scripts/rearch_bilateral.py
    loads; the default pools the splat features directly. Both give the same grid shape."""
    cfg = dict(lowres=64, grid_size=8, bins=4, width=4)
    hdrnet, pooled = BilateralEnhancer(**cfg, global_convs=2).eval(), BilateralEnhancer(**cfg).eval()
    assert len(hdrnet.gridnet.global_conv) == 2 and len(pooled.gridnet.global_conv) == 0
    assert not any(k.startswith("gridnet.global_conv") for k in pooled.state_dict())
    low = torch.rand(1, 3, 64, 64)
    assert hdrnet.gridnet(low).shape == pooled.gridnet(low).shape == (1, 48, 8, 8)


def test_min_illumination_sets_the_largest_gain_in_every_slicing_path():
    """A floor of 0.025 lets a very dark pixel be lifted 40x (20x at the default 0.05); the manifest's
    guide parameters carry the floor, so the numpy and fused slicing passes agree with torch."""
    from edgeenhance.errors import UserError
    from edgeenhance.models.registry import check_config
    from edgeenhance.runtime.fused_slice import fused_slice

    x = torch.full((1, 3, 16, 16), 0.01)
    gains = {}
    for floor in (0.05, 0.025):
        m = BilateralEnhancer(min_illumination=floor).eval()
        with torch.no_grad():
            m.gridnet.out.bias.view(8, 3, 4)[:, :, 3] = 1e-4  # S far below any floor: the floor decides
            full = m(x)[0].permute(1, 2, 0).numpy()
            grid = m.gridnet(m.low_res(x))[0].numpy()
        gains[floor] = float(full.mean() / 0.01)
        img = np.ascontiguousarray(x[0].permute(1, 2, 0).numpy())
        assert m.guide_params()["min_illumination"] == floor
        for slicer in (reference_slice, fast_slice, fused_slice):
            assert np.abs(slicer(img, grid, m.guide_params()) - full).max() < 1e-6, slicer.__name__
    assert gains[0.05] == pytest.approx(20.0, rel=1e-4) and gains[0.025] == pytest.approx(40.0, rel=1e-4)
    with pytest.raises(UserError, match="min_illumination must be in"):
        check_config("bilateral", {"min_illumination": 0.0})


@pytest.mark.parametrize("exposure,name", [("under", "bilateral"), ("over", "bilateral-over")])
def test_shipped_weights_have_the_model_their_script_recipe_trains(exposure, name):
    """scripts/train_bilateral.py is how the shipped weights are made: its recipe's model settings are
    the checkpoint's (both gain at most 20x: at 30x and 40x the low-light model's int8 file failed 38 dB)."""
    from conftest import load_script

    RECIPES = load_script("scripts/train_bilateral.py").RECIPES
    recipe = BilateralEnhancer(**(RECIPES[exposure].model_config or {})).config
    assert load_model(name).config == recipe
    assert recipe["min_illumination"] == 0.05


def test_train_script_reports_a_missing_data_folder_in_one_line(tmp_path, capsys):
    """A wrong --data is a user mistake: one error line and exit code 2, no traceback, no run folder."""
    from conftest import load_script

    script = load_script("scripts/train_bilateral.py")
    with pytest.raises(SystemExit) as e:
        script.main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such dataset folder" in err[0]
    assert not (tmp_path / "run").exists()


def test_train_script_fine_tunes_its_stage_1_and_ships_stage_2(tmp_path, monkeypatch):
    """Low light is two stages: the recipe, then its final weights fine-tuned (lower lr, fresh schedule,
    milder exposure errors) into OUT/tune, whose best weights are shipped; a finished stage 1 is not rerun
    on --resume."""
    import edgeenhance.models.registry as registry
    import edgeenhance.train.bilateral as bil
    from conftest import load_script

    script = load_script("scripts/train_bilateral.py")
    runs = []

    def fake(out, config):
        runs.append((Path(out), config))
        Path(out).mkdir(parents=True, exist_ok=True)
        for name in ("final", "best"):
            (Path(out) / f"{name}.safetensors").write_text(f"{name} of {out}")
        return {"stopped": False, "best": None}

    monkeypatch.setattr(bil, "train_bilateral", fake)
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    out = tmp_path / "run"
    script.main(["--data", str(tmp_path), "--out", str(out), "--ship"])
    (o1, c1), (o2, c2) = runs
    assert o1 == out and c1.steps == script.RECIPE.steps and c1.init is None
    assert o2 == out / "tune" and c2.init == str(out / "final.safetensors")
    assert (c2.steps, c2.lr, c2.ev_range) == (2000, 3e-4, (-5.0, -1.0)) and c1.ev_range is None
    assert (c1.zero_ref_weight, c2.zero_ref_weight) == (0.1, 0.075) and c2.ema == c1.ema and c2.data == c1.data
    assert (tmp_path / "weights" / "bilateral.safetensors").read_text() == f"best of {out / 'tune'}"

    runs.clear()  # without stage 2, stage 1's final weights are shipped
    script.main(["--data", str(tmp_path), "--out", str(out), "--tune-steps", "0", "--ship"])
    assert [o for o, _ in runs] == [out]
    assert (tmp_path / "weights" / "bilateral.safetensors").read_text() == f"final of {out}"

    runs.clear()
    script.main(["--data", str(tmp_path), "--out", str(out), "--resume"])
    assert [o for o, _ in runs] == [out / "tune"] and runs[0][1].resume


def test_train_script_stage1_option_is_checked(tmp_path, capsys):
    from conftest import load_script

    script = load_script("scripts/train_bilateral.py")
    for args, msg in [(["--stage1", str(tmp_path / "nope.safetensors")], "no such file"),
                      (["--exposure", "over", "--tune-steps", "5"], "for the low-light model")]:
        with pytest.raises(SystemExit) as e:
            script.main(["--data", str(tmp_path), "--out", str(tmp_path / "run"), *args])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0]
    assert not (tmp_path / "run").exists()
