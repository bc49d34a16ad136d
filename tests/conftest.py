import contextlib
import os
import signal

import numpy as np
import pytest
import torch

torch.set_num_threads(2)
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def load_script(relpath: str):
    """A script of the repository (benchmarks/, scripts/: not a package) imported as a module."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / relpath
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def save(path, arr):
    from edgeenhance.data.imageio import write_image

    write_image(path, arr)
    return path


@contextlib.contextmanager
def signal_on_call(owner, name, call, sig):
    """``owner.name`` sends ``sig`` to this process on its ``call``-th call. Meanwhile a handler that
    raises stands in for the default one, so that a trainer which does not catch the signal fails the
    test instead of ending pytest."""
    def fail(signum, frame):
        raise RuntimeError(f"{signal.Signals(signum).name} reached the test: the trainer did not catch it")

    orig, calls = getattr(owner, name), []

    def wrapped(*a, **kw):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), sig)
        return orig(*a, **kw)

    old = signal.signal(sig, fail)
    setattr(owner, name, wrapped)
    try:
        yield
    finally:
        setattr(owner, name, orig)
        signal.signal(sig, old)
