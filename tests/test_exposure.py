"""Exposure synthesis from real photos and the on-the-fly training datasets built on it."""

import numpy as np
import pytest

from edgeenhance.data.exposure import Exposure, ToneCurve, capture, sample_exposure, synthesize
from edgeenhance.data.photosets import ExposurePairs, PhotoCrops, batches, photo_files

SRGB = ToneCurve()


def flat(value, size=64):
    return np.full((size, size, 3), value, np.float32)


def clean(ev, curve=SRGB, wb=(1.0, 1.0, 1.0)):
    return Exposure(ev, 100.0, wb, curve, jpeg_quality=0, noise=0.0)


@pytest.mark.parametrize("curve", [SRGB, ToneCurve(2.2, 0.4, 0.3)])
def test_one_stop_halves_linear_light(curve):
    img = np.random.default_rng(0).uniform(0.2, 0.9, (32, 32, 3)).astype(np.float32)
    out = capture(img, clean(-1.0, curve), np.random.default_rng(0))
    ratio = curve.inverse(out) / curve.inverse(img)
    # 8-bit rounding of the output is the only error left
    assert np.median(ratio) == pytest.approx(0.5, abs=0.01)
    assert np.abs(ratio - 0.5).max() < 0.05


def test_curve_round_trip():
    for curve in (SRGB, ToneCurve(1.9, 0.6, 0.4)):
        x = np.linspace(0, 1, 1001, dtype=np.float32)
        assert np.abs(curve.forward(curve.inverse(x)) - x).max() < 2e-3
        assert np.all(np.diff(curve.forward(x)) >= 0)


def test_clipping_happens_in_linear_light_before_the_curve():
    # Two pixels 1.5x and 3x past sensor white after +2 EV: the clip destroys the difference,
    # so they come out identical (a clip after the curve would be on encoded values).
    lin = np.array([[[1.5, 0.05, 0.05], [3.0, 0.05, 0.05]]], np.float32) / 4.0
    img = SRGB.forward(lin)
    out = capture(img, clean(2.0), np.random.default_rng(0))
    assert out[0, 0, 0] == out[0, 1, 0] == 1.0
    # the unclipped channels still scale by exactly 4 in linear light
    assert SRGB.inverse(out[0, :, 1]) == pytest.approx(4 * SRGB.inverse(img[0, :, 1]), rel=0.05)


def test_per_channel_clipping_shifts_hue_and_white_balance_tints_clipped_highlights():
    lin = np.array([[[0.4, 0.2, 0.1]]], np.float32)  # orange
    out = capture(SRGB.forward(lin), clean(2.0), np.random.default_rng(0))
    r, g, b = SRGB.inverse(out)[0, 0]
    assert r == pytest.approx(1.0) and g == pytest.approx(0.8, abs=0.01)
    assert r / g < 0.4 / 0.2 * 0.7  # red lost its lead: the hue moved towards yellow
    # a white-balance gain applied after the sensor clip leaves clipped red below white
    tinted = capture(SRGB.forward(lin), clean(2.0, wb=(0.9, 1.0, 1.0)), np.random.default_rng(0))
    assert SRGB.inverse(tinted)[0, 0, 0] == pytest.approx(0.9, abs=0.01)


def test_noise_grows_as_light_falls():
    img = flat(0.5, 128)

    def snr(ev):
        exp = Exposure(ev, 800.0, (1.0, 1.0, 1.0), SRGB, jpeg_quality=0)
        lin = SRGB.inverse(capture(img, exp, np.random.default_rng(1)))
        return lin.mean() / lin.std()

    assert snr(-1) > 1.5 * snr(-3) > 2.0 * snr(-5)
    # and the sampled settings raise the ISO (the noise) on average as exposure falls
    rng = np.random.default_rng(0)
    mean_iso = {ev: np.mean([sample_exposure(rng, "under", (ev, ev)).iso for _ in range(200)]) for ev in (-1, -4)}
    assert mean_iso[-4] > 2 * mean_iso[-1]


def test_synthesis_is_deterministic_by_seed():
    img = np.random.default_rng(3).uniform(0, 1, (48, 40, 3)).astype(np.float32)
    a, ea = synthesize(img, np.random.default_rng(7))
    b, eb = synthesize(img, np.random.default_rng(7))
    c, _ = synthesize(img, np.random.default_rng(8))
    assert np.array_equal(a, b) and ea == eb
    assert not np.array_equal(a, c)
    assert a.shape == img.shape and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1


def test_under_exposure_darkens_and_over_exposure_clips():
    img = np.random.default_rng(0).uniform(0.1, 0.9, (64, 64, 3)).astype(np.float32)
    under, _ = synthesize(img, np.random.default_rng(0), "under", (-3, -3))
    over, _ = synthesize(img, np.random.default_rng(0), "over", (2, 2))
    assert under.mean() < 0.6 * img.mean()
    assert (over >= 254.5 / 255).mean() > 0.2 > (img >= 254.5 / 255).mean()


def photos(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.uniform(0, 1, (rng.integers(80, 120), rng.integers(80, 120), 3)) * 255).astype(np.uint8)
            for _ in range(n)]


def test_pairs_dataset_is_a_pure_function_of_the_index():
    ds = ExposurePairs(photos(), crop=32, seed=4, kinds={"under": 1.0})
    x, y = ds[11]
    x2, y2 = ds[11]
    assert x.shape == y.shape == (3, 32, 32)
    assert (x == x2).all() and (y == y2).all()
    assert x.mean() < y.mean()  # the input is the under-exposed one


def test_resumed_batches_equal_the_uninterrupted_stream_with_workers():
    ds = PhotoCrops(photos(), crop=16, seed=1, length=10 * 4)
    whole = [b for _, b in zip(range(6), batches(ds, 4, 0, workers=0))]
    resumed = [b for _, b in zip(range(3), batches(ds, 4, 3, workers=2))]
    for a, b in zip(whole[3:], resumed):
        assert (a == b).all()


def test_split_is_by_name_per_folder_and_disjoint(tmp_path):
    from PIL import Image

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        for i in range(1, 21):
            Image.new("RGB", (8, 8)).save(tmp_path / sub / f"{i}.png")
    train, val = photo_files(tmp_path, "train"), photo_files(tmp_path, "val")
    assert len(train) == 34 and len(val) == 6
    assert not set(train) & set(val)
    assert sorted(p.name for p in val if p.parent.name == "a") == ["18.png", "19.png", "20.png"]  # natural order


def test_highlights_brighter_than_the_photos_white_stay_bright_in_a_dark_frame():
    # a white window (sRGB 1.0) and a mid-grey wall (0.5) in a well-exposed photo, taken 3 stops under
    img = np.concatenate([flat(1.0, 8), flat(0.5, 8)], axis=1)
    plain = capture(img, clean(-3.0), np.random.default_rng(0))
    hdr = clean(-3.0)
    hdr.highlights = 8.0
    bright = capture(img, hdr, np.random.default_rng(0))
    assert SRGB.inverse(plain[0, 0, 0]) == pytest.approx(1 / 8, rel=0.05)  # the window turned grey ...
    assert bright[0, 0, 0] == pytest.approx(1.0)  # ... unless the scene was 3 stops brighter there
    assert np.array_equal(plain[:, 8:], bright[:, 8:])  # below the knee nothing changes


def test_highlight_draw_comes_last_and_only_when_asked():
    a = sample_exposure(np.random.default_rng(5), "under")
    b = sample_exposure(np.random.default_rng(5), "under", highlights=1.0)
    assert a.highlights == 1.0 and 2.0 <= b.highlights <= 32.0
    assert (a.ev, a.iso, a.wb, a.jpeg_quality) == (b.ev, b.iso, b.wb, b.jpeg_quality)  # validation pairs unchanged


def test_pairs_dataset_with_bright_highlights_keeps_white_areas_bright():
    white = [np.full((64, 64, 3), 255, np.uint8)]
    plain = ExposurePairs(white, crop=32, seed=2, kinds={"under": 1.0})
    bright = ExposurePairs(white, crop=32, seed=2, kinds={"under": 1.0}, highlights=1.0)
    means = [plain[k][0].mean() for k in range(8)], [bright[k][0].mean() for k in range(8)]
    assert all(b > p for p, b in zip(*means))  # the same draws, but the scene's white was brighter
    assert all((plain[k][1] == bright[k][1]).all() for k in range(8))  # targets are the photo either way


def test_pairs_dataset_draws_its_exposure_errors_from_the_given_range():
    grey = [np.full((64, 64, 3), 128, np.uint8)]
    kinds = {"under": 0.5, "normal": 0.5}
    mild = ExposurePairs(grey, crop=32, seed=3, kinds=kinds, ev_range=(-1.0, -1.0))
    deep = ExposurePairs(grey, crop=32, seed=3, kinds=kinds, ev_range=(-5.0, -5.0))
    for k in range(8):
        (m, y), (d, _) = mild[k], deep[k]
        if abs(m.mean() - y.mean()) < 0.02:  # a well-exposed sample: the range is not for it
            assert (d == m).all()
        else:
            assert d.mean() < 0.5 * m.mean()  # 4 stops further down
