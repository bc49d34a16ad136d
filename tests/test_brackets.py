"""Exposure brackets: scenes found by likeness, fused targets, aligned crops, and training on them."""

import numpy as np
import pytest

from edgeenhance.data.brackets import BracketPairs, bracket_groups, bracket_pairs, fuse_exposures
from edgeenhance.errors import UserError


def scene(seed, size=(64, 80)):
    """A linear-light scene with smooth structure, different per seed, radiance up to about 4."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size[0], 0:size[1]] / max(size)
    f = rng.uniform(2, 9, 4)
    base = 0.5 + 0.5 * np.sin(f[0] * xx + f[1] * yy)[..., None] * np.cos(f[2] * yy - f[3] * xx)[..., None]
    return 4 * base ** 2 * (0.6 + 0.4 * rng.random(3))


def shot(radiance, ev):
    """uint8 sRGB-ish frame of ``radiance`` at exposure ``ev`` (clipped at white, gamma 2.2)."""
    return np.round(np.clip(radiance * 2.0 ** ev, 0, 1) ** (1 / 2.2) * 255).astype(np.uint8)


DARK, LIT = (-7, -6, -5), 0  # clearly below / above mean luminance 0.3
SCENES = ((0, (-7, -6, 0)), (1, (-7, 0)), (2, (-6, 0)), (3, (-7, -6, -5, 0)))


def bracket_folder(path, scenes=SCENES):
    """Files 1.png, 2.png, ... : each scene's exposures in turn (named by number, not grouped)."""
    from conftest import save

    path.mkdir(parents=True)
    frames = []
    for seed, evs in scenes:
        for ev in evs:
            frames.append(shot(scene(seed), ev))
            save(path / f"{len(frames)}.png", frames[-1].astype(np.float32) / 255)
    return path, frames


def test_consecutive_frames_of_a_scene_are_one_bracket_whatever_their_exposure():
    frames = [shot(scene(0), ev) for ev in (-4, -2, 0)] + [shot(scene(1), ev) for ev in (-3, -1)] + [shot(scene(2), -2)]
    assert bracket_groups(frames) == [[0, 1, 2], [3, 4], [5]]


def test_fusion_lifts_the_shadows_of_the_dark_frame_and_keeps_the_highlights_of_the_bright_one():
    r = scene(0)
    dark, bright = shot(r, -4), shot(r, 0)
    fused = fuse_exposures([dark, bright]).astype(np.float32)
    shadows = r.mean(axis=2) < np.quantile(r.mean(axis=2), 0.3)
    assert fused[shadows].mean() > dark[shadows].mean() + 12  # (28 -> 46 of 255; the bright frame: 100)
    blown = (bright == 255).all(axis=2)
    assert blown.mean() > 0.2 and (fused[blown] < 250).mean() > 0.9  # not white where the dark frame saw detail


def test_bracket_pairs_are_the_dark_training_frames_with_their_brackets_fusion(tmp_path):
    folder, frames = bracket_folder(tmp_path / "sice")
    # 11 frames by name: 10.png and 11.png (the last 15%) are held out, so scene 3's training frames
    # (8.png, 9.png) are dropped: its bracket continues into the held-out frames
    pairs = bracket_pairs(folder, "train")
    want = [(0, [0, 1, 2]), (1, [0, 1, 2]), (3, [3, 4]), (5, [5, 6])]  # (dark frame, its bracket)
    assert len(pairs) == len(want)
    for (x, y), (i, bracket) in zip(pairs, want):
        assert np.array_equal(x, frames[i])
        assert np.array_equal(y, fuse_exposures([frames[j] for j in bracket]))
    held_out = bracket_pairs(folder, "val")  # 10.png (-5 EV) with 11.png (0 EV)
    assert len(held_out) == 1 and np.array_equal(held_out[0][0], frames[9])


def test_a_folder_without_dark_brackets_is_a_clear_error(tmp_path):
    folder, _ = bracket_folder(tmp_path / "lit", scenes=((0, (0, 1)), (1, (-1, 0)), (2, (0,)), (3, (0,))))
    with pytest.raises(UserError, match="no frame darker"):
        bracket_pairs(folder, "train")


def test_crops_of_a_pair_share_their_window_and_are_a_pure_function_of_the_index():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 100, (90, 120, 3), dtype=np.uint8)
    ds = BracketPairs([(x, x * 2)], crop=32, seed=3)
    for k in range(6):  # random windows, zooms and flips: the target crop is still twice the input's
        cx, cy = ds[k]
        assert cx.shape == (3, 32, 32) and np.allclose(cy.numpy(), 2 * cx.numpy(), atol=1.5 / 255)
    assert np.array_equal(ds[4][0], BracketPairs([(x, x * 2)], crop=32, seed=3)[4][0])
    assert not np.array_equal(ds[4][0], ds[5][0])


def test_a_short_run_with_brackets_trains_on_them_and_scores_their_held_out_dark_frames(tmp_path, monkeypatch):
    from test_training import photo_dir, small_run

    import edgeenhance.train.bilateral as bil

    folder, _ = bracket_folder(tmp_path / "sice")
    drawn, sizes, logs = [], [], []
    get, loss = BracketPairs.__getitem__, bil.supervised_loss
    monkeypatch.setattr(BracketPairs, "__getitem__", lambda self, k: drawn.append(k) or get(self, k))
    monkeypatch.setattr(bil, "supervised_loss", lambda out, s, x, y: sizes.append(len(x)) or loss(out, s, x, y))
    r = small_run(tmp_path / "run", data=str(photo_dir(tmp_path / "photos")), brackets=[folder], bracket_mix=0.5,
                  steps=4, val_every=4, workers=0, log=logs.append)
    assert sizes == [4] * 4 and len(drawn) == 2 * 4  # per step of batch 4: 2 synthesized + 2 bracket pairs
    assert "dark_lift" in r["best"]  # its held-out dark frame (10.png) is scored at validation
    assert any("4 real dark frames paired" in line and "1 held out" in line for line in logs)


@pytest.mark.parametrize("kw, match", [(dict(bracket_mix=1.0), "--bracket-mix"), (dict(data="synthetic"), "--data"),
                                       (dict(exposure="over"), "--exposure under"), (dict(batch=1), "--batch 1")])
def test_bracket_options_that_cannot_work_are_clear_errors(tmp_path, kw, match):
    from test_training import photo_dir, small_run

    folder, _ = bracket_folder(tmp_path / "sice")
    args = dict(data=str(photo_dir(tmp_path / "photos")), brackets=[folder], steps=1, workers=0)
    with pytest.raises(UserError, match=match):
        small_run(tmp_path / "run", **{**args, **kw})
