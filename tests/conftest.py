"""Shared fixtures: every test must leave no process or thread of ours behind."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

# multiprocessing's own helpers live until the interpreter exits; not ours.
HELPERS = ("resource_tracker", "forkserver")
# Nor are zarr's event loop thread and its thread pools (started on first use,
# kept until exit; asyncio_N run its loop's file I/O).
# distributed's offload pool (distributed.utils._offload_executor) starts on
# first use and is never shut down, whatever clients and clusters closed.
FOREIGN_THREADS = ("zarr_io", "zarr_pool", "asyncio_", "Dask-Offload")


# Started in the background (`cmd &` in a script, nohup), the test run
# inherits SIGINT ignored, and so would every process it starts: the Ctrl-C
# tests would send a signal nobody hears. Caught here, it is reset to the
# default in each program the tests start.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def our_processes() -> list[psutil.Process]:
    """Child processes, less multiprocessing's resource tracker and forkserver."""
    me = psutil.Process()
    found = []
    for proc in me.children(recursive=True):
        try:
            helper = proc.ppid() == me.pid and any(
                h in " ".join(proc.cmdline()) for h in HELPERS
            )
        except psutil.Error:
            continue
        if not helper:
            found.append(proc)
    return found


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.005) -> bool:
    """Poll *predicate* until it is true or *timeout* passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


@pytest.fixture(autouse=True)
def no_leaks():
    """Fail a test that leaves a process or thread running."""
    threads_before = set(threading.enumerate())
    pids_before = {p.pid for p in our_processes()}
    yield
    left = [p for p in our_processes() if p.pid not in pids_before]
    _, alive = psutil.wait_procs(left, timeout=5)
    assert not alive, f"processes left running: {alive}"
    new_threads = [
        t
        for t in threading.enumerate()
        if t not in threads_before and not t.name.startswith(FOREIGN_THREADS)
    ]
    for thread in new_threads:
        thread.join(timeout=5)
    alive_threads = [t for t in new_threads if t.is_alive()]
    assert not alive_threads, f"threads left running: {alive_threads}"


@pytest.fixture(params=[None, "spawn"], ids=["default", "spawn"])
def mp_context(request):
    """The default start method (forkserver on Linux), and spawn."""
    return request.param


@pytest.fixture(params=["processes", "threads"])
def executor(request):
    """Our own process pool (None), and a caller's ThreadPoolExecutor."""
    if request.param == "processes":
        yield None
        return
    with ThreadPoolExecutor(2) as pool:
        yield pool


def gone(pids, timeout: float = 5.0) -> bool:
    """True once every process of *pids* has ended (zombies count as ended)."""
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
