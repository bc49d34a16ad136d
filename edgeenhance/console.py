"""Keep third-party converters' chatter (prints, progress bars, warnings) off the user's terminal."""

from __future__ import annotations

import contextlib
import io
import warnings


@contextlib.contextmanager
def quiet():
    """Capture stdout/stderr and silence warnings for the duration of the block."""
    buf = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        warnings.simplefilter("ignore")
        yield buf
