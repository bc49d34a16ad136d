import numpy as np

from edgeenhance.data.camera import Camera, linear_to_srgb, luminance, reexpose, srgb_to_linear
from edgeenhance.data.scenes import random_scene, render
from edgeenhance.data.synth import render_pair, render_single, write_dataset


def test_render_is_deterministic_by_seed():
    a = render(random_scene(3), (48, 64))
    b = render(random_scene(3), (48, 64))
    c = render(random_scene(4), (48, 64))
    assert a.shape == (48, 64, 3) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_light_power_scales_radiance():
    p = random_scene(5, night=False)
    base = render(p, (32, 32))
    p.light.power *= 4
    brighter = render(p, (32, 32))
    assert brighter.mean() > base.mean() * 1.3


def test_exposure_really_changes_brightness_and_clipping():
    radiance = render(random_scene(11, night=False), (64, 64))
    rng = np.random.default_rng(0)
    imgs = {ev: Camera(ev=ev, gamma=0).capture(radiance, rng) for ev in (-3, 0, 2.5)}
    means = [imgs[ev].mean() for ev in (-3, 0, 2.5)]
    assert means[0] < means[1] < means[2]
    clipped = {ev: (im >= 0.999).mean() for ev, im in imgs.items()}
    assert clipped[2.5] > clipped[0] + 0.05
    assert clipped[-3] <= clipped[0]
    # 8-bit quantization: at most 256 distinct levels
    assert len(np.unique(imgs[0])) <= 256


def test_low_light_is_noisier_relative_to_signal():
    flat = np.full((64, 64, 3), 0.5, np.float32)
    rng = np.random.default_rng(0)
    cam_dark = Camera(ev=-4, gamma=1.0, full_well=500, read_noise=0.003)
    cam_good = Camera(ev=0, gamma=1.0, full_well=500, read_noise=0.003)
    dark, good = cam_dark.capture(flat, rng, metering=1.0), cam_good.capture(flat, rng, metering=1.0)
    assert dark.std() / dark.mean() > 2 * good.std() / good.mean()


def test_response_curves_invert():
    x = np.linspace(0, 1, 101, dtype=np.float32)
    assert np.allclose(srgb_to_linear(linear_to_srgb(x)), x, atol=1e-5)
    cam = Camera(gamma=2.2, shoulder=0.3)
    assert np.allclose(cam.inverse_response(cam.response(x)), x, atol=1e-4)
    assert np.all(np.diff(cam.response(x)) >= 0)


def test_pairs_under_and_over():
    under, target = render_pair(7, "under", (48, 48))
    over, target2 = render_pair(7, "over", (48, 48))
    assert np.array_equal(target, target2)  # same scene, same well-exposed capture
    assert luminance(under).mean() < luminance(target).mean() < luminance(over).mean()
    assert (over >= 0.999).mean() > (target >= 0.999).mean()


def test_reexpose_orders_brightness():
    img = render_single(2, "normal", (32, 32))
    rng = np.random.default_rng(0)
    dark, bright = reexpose(img, -1.5, rng), reexpose(img, 1.5, rng)
    assert dark.mean() < img.mean() < bright.mean()


def test_write_dataset_layouts(tmp_path):
    write_dataset(tmp_path / "p", "paired", 3, size=(32, 32), workers=1, progress=False)
    assert sorted(p.name for p in (tmp_path / "p" / "input").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert len(list((tmp_path / "p" / "target").iterdir())) == 3
    write_dataset(tmp_path / "u", "unpaired", 2, size=(32, 32), workers=2, progress=False)
    a = sorted((tmp_path / "u" / "trainA").iterdir())
    b = sorted((tmp_path / "u" / "trainB").iterdir())
    assert len(a) == len(b) == 2


# The renderer must look like photographs: real blacks, clipped lamps, contrast. The thresholds sit
# between the haze renderer this replaced (numbers in the comments) and what it renders now.

def _darkest30(img):
    v = np.sort(luminance(img).ravel())
    return float(v[: int(0.3 * len(v))].mean())


def _night_seeds(n):
    return [s for s in range(200) if random_scene(s).light.kind == "lamp"][:n]


def test_tone_curve_has_a_toe_and_a_shoulder():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    for gamma, plain in ((0.0, linear_to_srgb(x)), (2.2, Camera(gamma=2.2).response(x))):
        cam = Camera(gamma=gamma, contrast=1.5)
        y = cam.response(x)
        shadows, highlights = (x > 0) & (x < 0.15), (x > 0.22) & (x < 1)
        assert np.all(y[shadows] < plain[shadows])  # dark tones pushed down, not lifted
        assert y[10] < 0.5 * plain[10]  # 1% of white: well into the toe
        assert np.all(y[highlights] > plain[highlights])  # highlights rolled off into white
        assert abs(float(cam.response(np.float32(0.18))) - float(Camera(gamma=gamma).response(np.float32(0.18)))) < 1e-3
        assert np.all(np.diff(y) >= 0) and y[0] == 0 and y[-1] == 1
        assert np.allclose(cam.inverse_response(y), x, atol=2e-3)


def test_a_stop_still_halves_linear_light_through_the_tone_curve():
    radiance = np.linspace(0.02, 0.45, 64, dtype=np.float32)[None, :, None].repeat(3, 2)
    cam = dict(gamma=0.0, contrast=1.6, full_well=0, read_noise=0, bits=16)
    rng = np.random.default_rng(0)
    a = Camera(ev=0, **cam).inverse_response(Camera(ev=0, **cam).capture(radiance, rng, metering=1.0))
    b = Camera(ev=-1, **cam).inverse_response(Camera(ev=-1, **cam).capture(radiance, rng, metering=1.0))
    assert np.allclose(a / b, 2.0, rtol=0.02)


def test_under_exposed_inputs_have_real_blacks():
    darks = [_darkest30(render_pair(s, "under", (64, 64))[0]) for s in range(16)]
    assert np.median(darks) < 0.08  # old renderer: 0.23 (grey haze)


def test_night_scenes_have_several_bright_lamps():
    for s in range(8):
        p = random_scene(s, night=True)
        assert p.light.kind == "lamp" and len(p.lamps) >= 1
        assert all(lt.radius > 0 for lt in [p.light, *p.lamps])
        assert p.fill < 0.01 and p.sky_power < 0.02  # almost no fill: shadows stay black
        radiance = render(p, (96, 96))
        lum = luminance(radiance)
        assert lum.max() > 300 * np.median(lum)  # emitters far above what they light


def test_night_inputs_are_dark_with_a_few_clipped_lamps():
    seeds = _night_seeds(6)
    darks = []
    for s in seeds:
        under, target = render_pair(s, "under", (96, 96))
        clipped = (under >= 0.999).any(-1)
        assert 1 <= clipped.sum() and clipped.mean() < 0.03, (s, clipped.sum())  # old renderer: none
        assert (target >= 0.999).any(-1).mean() < 0.25
        darks.append(_darkest30(under))
    assert np.median(darks) < 0.03


def test_night_light_power_scales_radiance():
    p = random_scene(8, night=True)
    base = render(p, (32, 32))
    p.light.power *= 4
    assert render(p, (32, 32)).mean() > base.mean() * 1.1


def test_targets_have_contrast():
    stds = [luminance(render_pair(s, "under", (64, 64))[1]).std() for s in range(16)]
    assert np.mean(stds) > 0.17  # old renderer: 0.129
