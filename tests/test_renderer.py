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
