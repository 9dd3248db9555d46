"""Processes of ours end on their own when the parent dies (even by SIGKILL).

A process that ends that way skips multiprocessing's exit hooks, which
remove its temp folder (``pymp-*``): it removes that folder itself, and the
dead parent's, which nobody else can.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing import process, util
from typing import NoReturn

POLL = 0.5
"""Seconds between two looks at the parent, where it cannot be waited on."""


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


def _waiter(pid: int) -> Callable[[], None] | None:
    """A call that returns once process *pid* has ended; None if it has.

    On Linux a pidfd is readable once its process has ended (no polling, no
    mistaking a new process for it); elsewhere psutil looks every ``POLL``
    seconds (imported only then: ~10 ms a worker's start need not pay)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except (AttributeError, OSError):  # not Linux, or older than 5.3
        return _polling_waiter(pid)

    def wait() -> None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll()

    return wait


def _polling_waiter(pid: int) -> Callable[[], None] | None:
    import psutil

    try:
        process = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None

    def alive() -> bool:
        try:
            # is_running() also compares the start time: safe against pid reuse.
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def wait() -> None:
        while alive():
            time.sleep(POLL)

    return wait


def _end(parent_temp_dir: str | None) -> NoReturn:
    for tempdir in (owned_temp_dir(), parent_temp_dir):
        if tempdir is not None:
            shutil.rmtree(tempdir, ignore_errors=True)
    if os.getpgrp() == os.getpid():
        # A worker of ours leads its own group: end what its jobs detached
        # from its tree too (this process with them).
        os.killpg(os.getpid(), signal.SIGKILL)
    os._exit(1)


def _watch(wait: Callable[[], None], parent_temp_dir: str | None) -> None:
    wait()
    import psutil

    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child.kill()
    _end(parent_temp_dir)


def hold_on_to(parent_pid: int, parent_temp_dir: str | None = None) -> None:
    """In a worker or Manager process: ignore Ctrl-C (the parent decides what
    stops), and end this process and its children once *parent_pid* is gone,
    removing *parent_temp_dir* (see ``temp_dir_to_clean``) then."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wait = _waiter(parent_pid)
    if wait is None:
        _end(parent_temp_dir)
    threading.Thread(
        target=_watch,
        args=(wait, parent_temp_dir),
        name="preload-lifeline",
        daemon=True,
    ).start()
