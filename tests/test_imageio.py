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
