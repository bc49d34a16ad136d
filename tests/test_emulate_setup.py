"""`emulate arm64` without qemu: what its first run would download (every version pinned), how it fails
offline, and its clean errors. tests/test_emulate.py runs the real emulation where qemu is installed."""

import subprocess

import pytest

from edgeenhance.cli import main
from edgeenhance.errors import UserError
from edgeenhance.runtime import emulate


class OfflineHost:
    """subprocess.run for a Debian host with no network: dpkg answers, downloads fail."""

    def __init__(self, pip_ok=False, hang=False):
        self.calls, self.pip_ok, self.hang = [], pip_ok, hang

    def __call__(self, cmd, **kw):
        self.calls.append(list(cmd))
        done = lambda code, out="", err="": subprocess.CompletedProcess(cmd, code, out, err)  # noqa: E731
        if cmd[0] == "dpkg-query":
            return done(0, "1.2-3+deb12u1")
        if cmd[:2] == ["dpkg", "--print-foreign-architectures"]:
            return done(0, "arm64\n")
        if self.hang:
            raise subprocess.TimeoutExpired(cmd, kw.get("timeout", 0))
        if cmd[0] == "apt-get":
            if self.pip_ok:
                return done(0)
            return done(100, "", "E: Failed to fetch http://deb.debian.org/...: Temporary failure resolving "
                                 "'deb.debian.org'")
        if "pip" in cmd:
            return done(1, "", "ERROR: Could not find a version that satisfies the requirement numpy==2.4.6")
        return done(0)


@pytest.fixture
def host(monkeypatch, tmp_path):
    monkeypatch.setattr(emulate.shutil, "which", lambda name: f"/usr/bin/{name}")
    return tmp_path / "cache"


def test_first_run_downloads_pinned_versions_and_fails_cleanly_offline(host, monkeypatch):
    fake = OfflineHost()
    monkeypatch.setattr(emulate.subprocess, "run", fake)
    with pytest.raises(UserError, match="needs network access once"):
        emulate.ensure_sysroot(host, log=lambda *_: None)
    downloads = [c for c in fake.calls if c[:2] == ["apt-get", "download"]]
    assert downloads and all("=" in pkg for c in downloads for pkg in c[2:])  # name:arm64=version, each one
    assert {p.split("=")[0] for p in downloads[0][2:]} >= {"python3.11-minimal:arm64", "libc6:arm64", "media-types"}
    assert not (host / "sysroot").exists()

    fake = OfflineHost(pip_ok=True)  # Debian reachable, PyPI not
    monkeypatch.setattr(emulate.subprocess, "run", fake)
    with pytest.raises(UserError, match="pip download.*needs network access once"):
        emulate.ensure_sysroot(host, log=lambda *_: None)
    (pip,) = [c for c in fake.calls if "pip" in c][:1]
    reqs = [a for a in pip if "==" in a]
    assert {r.split("==")[0] for r in reqs} == {"numpy", "ai-edge-litert", "ml-dtypes", "protobuf"}
    assert "--retries" in pip  # offline it fails in seconds, not after minutes of retries


def test_pins_cover_every_download():
    debs, wheels = emulate.sysroot_pins()  # this host's own versions
    assert len(debs) == len(emulate.DEBIAN_PACKAGES + emulate.DEBIAN_ARCH_ALL)
    assert all(d.split("=", 1)[1] for d in debs)
    assert {w.split("==")[0] for w in wheels} == set(emulate.WHEELS_BINARY + emulate.WHEELS_PURE)
    from importlib.metadata import version

    assert f"numpy=={version('numpy')}" in wheels and f"ai-edge-litert=={version('ai-edge-litert')}" in wheels


def test_a_hanging_download_is_a_clean_error(host, monkeypatch):
    monkeypatch.setattr(emulate.subprocess, "run", OfflineHost(hang=True))
    with pytest.raises(UserError, match="timed out"):
        emulate.ensure_sysroot(host, log=lambda *_: None)


def test_help_says_what_the_first_run_fetches(capsys):
    with pytest.raises(SystemExit):
        main(["emulate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for what in ("network access", "apt-get download", "pip download", "ai-edge-litert", "pinned"):
        assert what in out


def test_missing_model_is_a_clean_error(tmp_path, capsys):
    assert main(["emulate", "arm64", str(tmp_path / "missing.tflite")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgeenhance: error:") and "no such model file" in err and "Traceback" not in err
