"""Processes of ours end on their own when the parent dies (even by SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

import psutil

POLL = 0.5
"""Seconds between two looks at the parent."""


def _alive(parent: psutil.Process) -> bool:
    try:
        # is_running() also compares the start time: safe against pid reuse.
        return parent.is_running() and parent.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _watch(parent: psutil.Process) -> None:
    while _alive(parent):
        time.sleep(POLL)
    me = psutil.Process()
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()
    os._exit(1)


def hold_on_to(parent_pid: int) -> None:
    """In a worker or Manager process: ignore Ctrl-C (the parent decides what
    stops), and end this process and its children once *parent_pid* is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        parent = psutil.Process(parent_pid)
    except psutil.NoSuchProcess:
        os._exit(1)
    threading.Thread(
        target=_watch, args=(parent,), name="preload-lifeline", daemon=True
    ).start()
