import numpy as np
import pytest
from PIL import Image

from edgeenhance.data.imageio import ImageInfo, read_image, write_image
from edgeenhance.errors import UserError


def test_png16_roundtrip(tmp_path):
    a = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    write_image(tmp_path / "x.png", a, ImageInfo(bit_depth=16))
    b, info = read_image(tmp_path / "x.png", with_info=True)
    assert info.bit_depth == 16
    assert np.abs(a - b).max() < 1 / 65535 + 1e-6  # far finer than 8 bit


def test_gray_and_rgba_kept(tmp_path):
    Image.fromarray(np.arange(20, dtype=np.uint8).reshape(4, 5) * 10, "L").save(tmp_path / "g.png")
    g, info = read_image(tmp_path / "g.png", with_info=True)
    assert g.shape == (4, 5, 3) and info.mode == "L"
    write_image(tmp_path / "g_out.png", g, info)
    assert Image.open(tmp_path / "g_out.png").mode == "L"
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[..., 3] = 77
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    x, info = read_image(tmp_path / "a.png", with_info=True)
    write_image(tmp_path / "a_out.png", x, info)
    back = np.asarray(Image.open(tmp_path / "a_out.png"))
    assert back.shape == (4, 5, 4) and np.all(back[..., 3] == 77)


def test_exif_orientation_applied(tmp_path):
    im = Image.fromarray(np.zeros((10, 20, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    im.save(tmp_path / "r.jpg", exif=exif)
    assert read_image(tmp_path / "r.jpg").shape == (20, 10, 3)


def test_unreadable_and_missing(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match="bad.jpg"):
        read_image(tmp_path / "bad.jpg")
    with pytest.raises(UserError, match="no such file"):
        read_image(tmp_path / "nope.png")


def test_write_is_atomic_on_failure(tmp_path):
    with pytest.raises(UserError):
        write_image(tmp_path / "x.xyz", np.zeros((2, 2, 3)))
    assert list(tmp_path.iterdir()) == []


def _camera_exif(orientation=1):
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132] = "Cam", "Model X", "2024:01:02 03:04:05"
    exif[0x0112] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"  # DateTimeOriginal, in the EXIF directory
    return exif


def _srgb_icc():
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_16bit_tiff_keeps_its_depth(tmp_path):
    import cv2

    q = (np.random.default_rng(0).random((5, 7, 3)) * 65535).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "x.tif"), q[..., ::-1])  # a 16-bit TIFF as a raw converter writes it
    x, info = read_image(tmp_path / "x.tif", with_info=True)
    assert info.bit_depth == 16 and np.abs(x * 65535 - q).max() < 0.01  # not rounded to 8 bit
    write_image(tmp_path / "y.tif", x, info)
    back = cv2.imread(str(tmp_path / "y.tif"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(back[..., ::-1], q)


def test_float_tiff_is_read_as_float(tmp_path):
    import cv2

    a = np.random.default_rng(0).uniform(0.2, 0.8, (5, 7, 3)).astype(np.float32)
    Image.fromarray(a[..., 0], "F").save(tmp_path / "g.tif")  # gray float: Pillow mode F, once read as black
    g, info = read_image(tmp_path / "g.tif", with_info=True)
    assert info.bit_depth == 32 and np.allclose(g[..., 0], a[..., 0])
    write_image(tmp_path / "g_out.tif", g, info)
    assert Image.open(tmp_path / "g_out.tif").mode == "F"
    cv2.imwrite(str(tmp_path / "rgb.tif"), a[..., ::-1])  # float RGB: Pillow cannot open it at all
    x, info = read_image(tmp_path / "rgb.tif", with_info=True)
    assert info.bit_depth == 32 and np.allclose(x, a)
    write_image(tmp_path / "rgb_out.tif", x, info)
    assert np.array_equal(cv2.imread(str(tmp_path / "rgb_out.tif"), cv2.IMREAD_UNCHANGED)[..., ::-1], a)
    cv2.imwrite(str(tmp_path / "hdr.tif"), a * 4)
    with pytest.raises(UserError, match=r"outside \[0, 1\]"):  # clipping would lose the highlights
        read_image(tmp_path / "hdr.tif")


def test_gray_alpha_kept_at_8_and_16_bit(tmp_path):
    ga = np.stack([np.arange(20, dtype=np.uint8).reshape(4, 5) * 10, np.full((4, 5), 77, np.uint8)], axis=2)
    Image.fromarray(ga, "LA").save(tmp_path / "la.png")
    g, info = read_image(tmp_path / "la.png", with_info=True)
    write_image(tmp_path / "la_out.png", g, info)
    out = Image.open(tmp_path / "la_out.png")
    assert out.mode == "LA" and np.array_equal(np.asarray(out), ga)
    a = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    alpha = np.random.default_rng(1).random((4, 5)).astype(np.float32)
    write_image(tmp_path / "la16.png", a, ImageInfo(bit_depth=16, mode="LA", alpha=alpha))
    g, info = read_image(tmp_path / "la16.png", with_info=True)
    assert (info.bit_depth, info.mode) == (16, "LA") and np.abs(info.alpha - alpha).max() < 1e-4


@pytest.mark.parametrize("kind", ["gif", "webp", "tiff"])
def test_animations_and_pages_are_refused(tmp_path, kind):
    frames = [Image.fromarray(np.full((4, 5, 3), 60 * k, np.uint8)) for k in range(3)]
    path = tmp_path / f"anim.{kind}"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(UserError, match="frame"):  # not silently the first frame
        read_image(path)


@pytest.mark.parametrize("suffix,bit_depth", [(".jpg", 8), (".png", 8), (".webp", 8), (".tif", 8), (".png", 16),
                                              (".tif", 16)])
def test_exif_and_icc_kept_with_orientation_reset(tmp_path, suffix, bit_depth):
    icc = _srgb_icc()
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(tmp_path / "in.jpg", exif=_camera_exif(6), icc_profile=icc)
    x, info = read_image(tmp_path / "in.jpg", with_info=True)
    info.bit_depth = bit_depth
    write_image(tmp_path / f"out{suffix}", x, info)
    with Image.open(tmp_path / f"out{suffix}") as im:
        exif = im.getexif()
        assert (exif[0x010F], exif[0x0110], exif.get_ifd(0x8769)[0x9003]) == ("Cam", "Model X", "2024:01:02 03:04:05")
        assert exif[0x0112] == 1 and im.info["icc_profile"] == icc
    assert read_image(tmp_path / f"out{suffix}").shape == (20, 10, 3)  # rotated once, not again


def test_16bit_orientation_matches_pillow(tmp_path):
    """16-bit files are decoded by OpenCV and oriented here; every EXIF orientation must match Pillow's."""
    q = np.random.default_rng(0).integers(0, 256, (3, 5, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        Image.fromarray(q).save(tmp_path / "ref.png", exif=_camera_exif(orientation))
        ref = read_image(tmp_path / "ref.png")
        for suffix in (".png", ".tif"):
            info = ImageInfo(bit_depth=16, exif=_camera_exif(orientation).tobytes())
            write_image(tmp_path / f"x{suffix}", q / 255.0, info)
            x, info = read_image(tmp_path / f"x{suffix}", with_info=True)
            assert info.bit_depth == 16 and x.shape == ref.shape and np.abs(x - ref).max() < 1e-4, (orientation, suffix)


def test_lossless_webp_stays_lossless(tmp_path):
    q = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    Image.fromarray(q).save(tmp_path / "l.webp", lossless=True)
    x, info = read_image(tmp_path / "l.webp", with_info=True)
    assert info.lossless
    write_image(tmp_path / "out.webp", x, info)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.webp")), q)
    Image.fromarray(q).save(tmp_path / "lossy.webp", quality=80)
    assert not read_image(tmp_path / "lossy.webp", with_info=True)[1].lossless


def test_pixel_limit_is_ours_not_pillows(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "x.png")
    with pytest.raises(UserError, match="600 pixels, over the limit of 500"):
        read_image(tmp_path / "x.png", max_pixels=500)
    # Pillow's decompression-bomb error (at 179 MP by default) is no UserError and stopped a whole batch
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    assert read_image(tmp_path / "x.png").shape == (20, 30, 3)
    assert Image.MAX_IMAGE_PIXELS == 100  # put back
