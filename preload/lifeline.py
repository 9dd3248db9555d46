"""Processes of ours end on their own when the parent dies (even by SIGKILL).

A process that ends that way skips multiprocessing's exit hooks, which
remove its temp folder (``pymp-*``): it removes that folder itself, and the
dead parent's, which nobody else can.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from multiprocessing import process, util

import psutil

POLL = 0.5
"""Seconds between two looks at the parent."""


def owned_temp_dir() -> str | None:
    """This process's multiprocessing temp folder, if this process made it
    (a forked child inherits its parent's, and must leave it alone)."""
    tempdir = process.current_process()._config.get("tempdir")
    if tempdir is None:
        return None
    # get_temp_dir() registers the folder's removal in the process that made it.
    for finalizer in list(util._finalizer_registry.values()):
        if finalizer._callback is util._remove_temp_dir and tempdir in (
            finalizer._args or ()
        ):
            return tempdir
    return None


def temp_dir_to_clean() -> str | None:
    """This process's multiprocessing temp folder, made now if there is none,
    for a process of ours to remove should this one be killed; None if this
    process did not make it."""
    util.get_temp_dir()
    return owned_temp_dir()


def _alive(parent: psutil.Process) -> bool:
    try:
        # is_running() also compares the start time: safe against pid reuse.
        return parent.is_running() and parent.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _end(parent_temp_dir: str | None) -> None:
    for tempdir in (owned_temp_dir(), parent_temp_dir):
        if tempdir is not None:
            shutil.rmtree(tempdir, ignore_errors=True)
    if os.getpgrp() == os.getpid():
        # A worker of ours leads its own group: end what its jobs detached
        # from its tree too (this process with them).
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(1)


def _watch(parent: psutil.Process, parent_temp_dir: str | None) -> None:
    while _alive(parent):
        time.sleep(POLL)
    me = psutil.Process()
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()
    _end(parent_temp_dir)


def hold_on_to(parent_pid: int, parent_temp_dir: str | None = None) -> None:
    """In a worker or Manager process: ignore Ctrl-C (the parent decides what
    stops), and end this process and its children once *parent_pid* is gone,
    removing *parent_temp_dir* (see ``temp_dir_to_clean``) then."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        parent = psutil.Process(parent_pid)
    except psutil.NoSuchProcess:
        _end(parent_temp_dir)
    threading.Thread(
        target=_watch,
        args=(parent, parent_temp_dir),
        name="preload-lifeline",
        daemon=True,
    ).start()
