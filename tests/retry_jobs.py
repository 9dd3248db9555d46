"""Preload functions for the retry tests (importable by name in workers)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from preload import PreloadState

ERRORS = {"ConnectionError": ConnectionError, "ValueError": ValueError}


def attempt_number(path: str, data_id: str) -> int:
    """Records one more attempt of *data_id* in *path*; its number (1 first)."""
    number = len(list(Path(path).glob(f"attempt-{data_id}-*"))) + 1
    Path(path, f"attempt-{data_id}-{number}").write_text(str(os.getpid()))
    return number


def flaky(handle, data_id, path, fails, error="ConnectionError"):
    """Raises *error* in its first *fails* attempts, then completes."""
    number = attempt_number(path, data_id)
    handle.notify(PreloadState(data_id, progress=0.5, message=f"attempt {number}"))
    if number <= fails:
        raise ERRORS[error](f"{data_id} refused attempt {number}")
    handle.notify(PreloadState(data_id, progress=1.0, message="Done."))


def dies_once(handle, data_id, path):
    """Its worker dies in the first attempt; the second completes."""
    if attempt_number(path, data_id) == 1:
        os._exit(3)


def hangs_once(handle, data_id, path, cooperative):
    """Hangs in its first attempt (looking at ``cancelled`` if *cooperative*)."""
    if attempt_number(path, data_id) > 1:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (cooperative and handle.cancelled):
        time.sleep(0.01)


def dies(handle, data_id, path):
    """Its worker dies in every attempt."""
    attempt_number(path, data_id)
    os._exit(3)
