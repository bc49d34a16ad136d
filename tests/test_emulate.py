import shutil

import pytest

from edgeenhance.errors import UserError

pytestmark = [pytest.mark.emulation, pytest.mark.filterwarnings("ignore"),
              pytest.mark.skipif(shutil.which("qemu-aarch64-static") is None,
                                 reason="qemu-user-static is not installed (make test installs it as root)")]


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    from edgeenhance.export import Exporter

    out = tmp_path_factory.mktemp("arm")
    Exporter("student-small", size=(16, 16), calib_images=4, verify_images=1, progress=False,
             log=lambda *_: None).export(["tflite"], ["fp32", "int8"], out)
    return out


def test_arm64_int8_matches_x86_and_reports_float(tiny_tflite):
    from edgeenhance.runtime.emulate import emulate_arm64, format_emulation

    r = emulate_arm64(tiny_tflite / "student-small_full_int8.tflite", n=2)
    assert r["arm"]["machine"] == "aarch64"  # really ran the aarch64 interpreter
    assert r["bit_identical"] and r["max_abs_error_arm_vs_x86"] == 0  # XNNPACK int8: same on ARM and x86
    assert r["psnr_arm_vs_float"] > 25  # and the PyTorch float model is the reference
    assert "ARM vs x86" in format_emulation(r)


def test_arm64_fp32_close_to_x86(tiny_tflite):
    from edgeenhance.runtime.emulate import emulate_arm64

    r = emulate_arm64(tiny_tflite / "student-small_full_fp32.tflite", n=1)
    assert r["max_abs_error_arm_vs_x86"] < 1e-4


def test_emulate_rejects_other_files(tmp_path):
    from edgeenhance.runtime.emulate import emulate_arm64

    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(UserError, match="emulation runs .tflite"):
        emulate_arm64(tmp_path / "m.onnx")
