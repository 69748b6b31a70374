"""Where third-party chatter goes: a debug log, not the user's terminal.

Libraries under Q2MRI warn in their own voices (ITK's readers about NIfTI qform/sform, torch
and numpy about deprecations). A user should see Q2MRI's own one-line messages only, so the
command line routes Python warnings that do not come from q2mri, and ITK's warning output,
to the debug log: $Q2MRI_LOG, or q2mri-debug.log in the temporary folder.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings

_LOG = logging.getLogger("q2mri.debug")


def log_path() -> str:
    return os.environ.get("Q2MRI_LOG") or os.path.join(tempfile.gettempdir(), "q2mri-debug.log")


def quiet_third_parties() -> None:
    """Send third-party warnings to the debug log (Q2MRI's own warnings still reach stderr)."""
    if not _LOG.handlers:
        try:
            handler: logging.Handler = logging.FileHandler(log_path(), delay=True)
        except OSError:
            handler = logging.NullHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        _LOG.addHandler(handler)
        _LOG.setLevel(logging.DEBUG)
        _LOG.propagate = False
    shown = warnings.showwarning

    def route(message, category, filename, lineno, file=None, line=None):
        if "/q2mri/" in str(filename).replace("\\", "/"):          # our own: the user sees it
            return shown(message, category, filename, lineno, file, line)
        _LOG.debug("%s:%s: %s: %s", filename, lineno, category.__name__, message)

    warnings.showwarning = route


@contextlib.contextmanager
def native_stderr_to_log():
    """Send what native code (ITK's readers) writes to file descriptor 2 to the debug log
    while the block runs; Python's own sys.stderr is untouched."""
    try:
        target = open(log_path(), "a")
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        sys.stderr.flush()
        os.dup2(target.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        target.close()
