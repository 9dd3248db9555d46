"""A blocking call's wait in a Jupyter kernel.

The kernel's main thread runs the cell; while it waits for the jobs, a click
on the panel's Cancel button is a message that only the main thread handles.
``jupyter_ui_poll`` (imported here only, in a kernel) handles such messages
during the wait and keeps the cells queued meanwhile for after it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

POLL = 0.05
"""Seconds between two rounds of handling the kernel's messages."""


def wait_processing_ui(ended: Callable[[float], bool]) -> None:
    """Call ``ended(POLL)`` until it returns True, handling the kernel's UI
    messages in between; without jupyter_ui_poll, just wait."""
    try:
        from jupyter_ui_poll import ui_events
    except ImportError:
        ended(None)
        return
    with ui_events() as poll:
        while not ended(POLL):
            poll(20)


def interrupted(cancelled: int) -> KeyboardInterrupt:
    """The KeyboardInterrupt that a blocking call raises, after one short line
    saying what it did; its traceback shows none of our frames in IPython."""
    jobs = "job" if cancelled == 1 else "jobs"
    print(f"preload: interrupted, {cancelled} {jobs} cancelled", file=sys.stderr)
    return KeyboardInterrupt()
