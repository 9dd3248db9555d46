"""The dask task that runs one job, on a dask worker.

dask cannot stop a running task, and a task that dies takes its worker with
it. So a task does not run the job itself: it starts the job in a process of
its own (``dask_child.py``; a fresh interpreter per job, in a session of its
own, since a dask worker is daemonic and cannot start ``multiprocessing``
children) and supervises it:

* forwards the job's message batches as dask events (``log_event`` on the
  run's topic), which the client's subscription hands to the collector;
* tells the job to see ``cancelled`` when the run is cancelled (``raise_flag``,
  which the parent broadcasts with ``client.run``) or its timeout passed;
* kills the job's process group ``cancel_grace`` seconds later, or when it
  holds more than ``max_memory``, or at once on ``kill`` (the parent's close);
* returns the job's ``Outcome``; a job process that died fails its job alone,
  naming the host and the pid, and the worker lives on.

What a worker keeps of a run (``_runs``: its cancel flag, its tasks and job
processes running now) is dropped by ``forget`` when the run is released;
only its token stays (the last ``CLOSED_KEPT``), so that a task of the run
that starts late (dask cancels a future at once, but cannot stop a task its
worker was starting) ends CANCELLED at once.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import select
import signal
import socket
import sys
import threading
import time

import psutil
from distributed import get_worker

from ..errors import WorkerDiedError, describe, describe_exit
from ..limits import Limits
from ..retry import Retry, keep_earlier
from ..state import PreloadStatus
from ..worker import CANCELLED, Job, Outcome
from .dask_child import (
    MESSAGES,
    OUTCOME,
    RUN_CANCEL,
    STOP,
    DaskEnd,
    split_frames,
    write_frame,
)
from .dask_zygote import Zygote
from .pool import format_bytes, tree_memory

TICK = 0.05
"""Seconds between two looks at a job's deadlines while it sends nothing."""

SAMPLE = 0.1
"""Seconds between two samples of a job's memory, while a limit is set."""

INSIGHT = 1.0
"""Seconds between two reports of a job's CPU and memory to the parent."""

EXIT_WAIT = 2.0
"""Seconds a job's process gets to exit after it sent its outcome."""

# Events on a run's topic: msgpack-able lists, their first item the kind.
EV_MESSAGES = "m"  # ["m", pickled batch of messages]
EV_BEGIN = "b"  # ["b", job index, host, pid of the job's process]
EV_INSIGHT = "i"  # ["i", job index, CPU percent, resident bytes]
EV_RUN_CANCEL = "c"  # ["c"]: a job cancelled the whole run


def topic(token: str) -> str:
    """The dask event topic of the run of *token*."""
    return f"preload-{token}"


class _Child:
    """A job process, as its task and the broadcasts see it."""

    def __init__(self, pid: int, control: int):
        self.pid = pid
        self.control = control
        self.lock = threading.Lock()
        self.stopped_at: float | None = None  # told to see `cancelled`
        self.reason: str | None = None  # why it was killed

    def stop(self) -> None:
        with self.lock:
            if self.stopped_at is None:
                self.stopped_at = time.monotonic()
                with contextlib.suppress(OSError):
                    os.write(self.control, STOP)

    def kill(self, reason: str) -> None:
        with self.lock:
            if self.reason is None:
                self.reason = reason
            # The job's session leader: its group holds all it started.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)


class _RunOnWorker:
    def __init__(self) -> None:
        self.cancelled = False
        self.killed = False
        self.active = 0  # its tasks running on this worker
        self.children: set[_Child] = set()


_lock = threading.Lock()
_runs: dict[str, _RunOnWorker] = {}

# Tokens of runs released: a task of theirs that a cancel overtook (dask
# cancels a future at once, but a task its worker was starting then still
# starts) ends CANCELLED at once. The most recent CLOSED_KEPT are kept.
_closed: collections.OrderedDict[str, None] = collections.OrderedDict()
CLOSED_KEPT = 1000


def raise_flag(token: str) -> None:
    """The run of *token* is cancelled: its jobs on this worker see
    ``cancelled``, its tasks not started yet end CANCELLED (``client.run``)."""
    with _lock:
        if token in _closed:
            return
        run = _runs.setdefault(token, _RunOnWorker())
        run.cancelled = True
        children = list(run.children)
    for child in children:
        child.stop()


def kill(token: str) -> None:
    """Kill the job processes of *token* on this worker, now and any that a
    task starting meanwhile forks (``client.run``)."""
    with _lock:
        if token in _closed:
            return
        run = _runs.setdefault(token, _RunOnWorker())
        run.cancelled = run.killed = True
        children = list(run.children)
    for child in children:
        child.kill("cancel")


def active(token: str) -> int:
    """How many tasks of *token* run on this worker (``client.run``)."""
    with _lock:
        run = _runs.get(token)
        return 0 if run is None else run.active


def forget(token: str) -> None:
    """Drop what this worker keeps of *token* (``client.run``); the last run
    on this worker stops the helper that forks job processes."""
    with _lock:
        _runs.pop(token, None)
        _closed[token] = None
        while len(_closed) > CLOSED_KEPT:
            _closed.popitem(last=False)
        idle = not _runs
    if idle:
        Zygote.stop()


def run_dask_job(
    job: Job, end: DaskEnd, function: bytes, limits: Limits, modules: tuple[str, ...]
) -> Outcome:
    """The dask task of *job*: run it in a process of its own, supervised.
    *modules*: what the helper that forks job processes imports up front."""
    with _lock:
        if end.token in _closed:
            return CANCELLED
        run = _runs.setdefault(end.token, _RunOnWorker())
        if run.cancelled:
            return CANCELLED
        run.active += 1
    try:
        job = job._replace(function=function)
        while True:
            outcome = _run(job, end, run, limits, modules)
            error = outcome.exception
            if not _retried(error, job.earlier, limits.retry, run):
                break
            # The next attempt waits (retry_delay), saying so, in its process.
            job = job._replace(earlier=(*job.earlier, describe(error)))
        if job.earlier and isinstance(error, BaseException):
            keep_earlier(error, list(job.earlier), limits.retry.retries + 1)
        return outcome
    finally:
        with _lock:
            run.active -= 1
            # Cancelled outside the run (its client closed, its handle's process
            # died): no close() will come to forget it.
            worker = get_worker()
            orphan = run.active == 0 and _abandoned(worker, worker.get_current_task())
        if orphan:
            forget(end.token)


def _run(
    job: Job, end: DaskEnd, run: _RunOnWorker, limits: Limits, modules: tuple[str, ...]
) -> Outcome:
    worker = get_worker()
    control_read, control_write = os.pipe()
    frames_read, frames_write = os.pipe()
    zygote = Zygote.get()
    try:
        pid = zygote.fork(control_read, frames_write, modules)
    except BaseException:
        for fd in (control_read, control_write, frames_read, frames_write):
            os.close(fd)
        raise
    os.close(control_read)
    os.close(frames_write)
    child = _Child(pid, control_write)
    try:
        with _lock:
            run.children.add(child)
            cancelled, killed = run.cancelled, run.killed
        if killed:
            child.kill("cancel")
        host = socket.gethostname()
        worker.log_event(topic(end.token), [EV_BEGIN, job.index, host, pid])
        with contextlib.suppress(OSError):  # killed already: its exit says why
            write_frame(control_write, b"j", pickle.dumps((sys.path, job, end)))
        if cancelled:
            child.stop()
        return _supervise(worker, end.token, job, child, frames_read, limits, zygote)
    finally:
        with _lock:
            run.children.discard(child)
        if not zygote.wait(pid, 0):
            child.kill(child.reason or "ended")
            zygote.wait(pid, EXIT_WAIT)
        zygote.forget(pid)
        os.close(frames_read)
        os.close(control_write)


def _supervise(
    worker, token: str, job: Job, child: _Child, fd: int, limits: Limits, zygote
) -> Outcome:
    pid = child.pid
    name = topic(token)
    key = worker.get_current_task()
    started = time.monotonic()
    timed_out: float | None = None
    next_sample = started + SAMPLE
    next_insight = started + INSIGHT
    peak = 0
    buffer = bytearray()
    usage: psutil.Process | None = None
    with contextlib.suppress(psutil.Error):  # it may have ended already
        usage = psutil.Process(pid)
        usage.cpu_percent(None)
    while True:
        ready, _, _ = select.select([fd], [], [], TICK)
        if not ready and zygote.wait(pid, 0):
            # Ended, and no end of file: something it started holds the pipe.
            break
        if ready:
            data = os.read(fd, 1 << 16)
            if not data:
                break
            buffer += data
            for kind, payload in split_frames(buffer):
                if kind == MESSAGES:
                    worker.log_event(name, [EV_MESSAGES, payload])
                elif kind == RUN_CANCEL:
                    raise_flag(token)
                    worker.log_event(name, [EV_RUN_CANCEL])
                elif kind == OUTCOME:
                    outcome = pickle.loads(payload)
                    zygote.wait(pid, EXIT_WAIT)
                    if timed_out is not None:
                        return Outcome(
                            PreloadStatus.failed.value,
                            _timeout_error(job, limits, terminated=False),
                            outcome.tail,
                            outcome.sent,
                        )
                    return outcome
        if _abandoned(worker, key):
            # Its future was cancelled outside the run (the client closed, or
            # the handle's process died): nobody waits for this job any more.
            child.kill("cancel")
        now = time.monotonic()
        grace = limits.grace
        stopped = child.stopped_at
        if timed_out is None and stopped is None and limits.timeout is not None:
            if now - started > limits.timeout:
                timed_out = now
                child.stop()
        elif grace is not None and stopped is not None and now - stopped > grace:
            child.kill("cancel" if timed_out is None else "timeout")
        if limits.max_memory is not None and now >= next_sample:
            next_sample = now + SAMPLE
            used = tree_memory(pid)
            peak = max(peak, used)
            if used > limits.max_memory:
                child.kill("memory")
        if now >= next_insight and usage is not None:
            next_insight = now + INSIGHT
            with contextlib.suppress(psutil.Error):
                cpu = usage.cpu_percent(None)
                worker.log_event(name, [EV_INSIGHT, job.index, cpu, tree_memory(pid)])
    # The job's process ended without an outcome.
    zygote.wait(pid, None)
    code = zygote.exit_code(pid)
    failed = PreloadStatus.failed.value
    if child.reason == "cancel":
        return CANCELLED
    if child.reason == "timeout":
        return Outcome(failed, _timeout_error(job, limits, terminated=True))
    if child.reason == "memory":
        return Outcome(
            failed,
            MemoryError(
                f"{job.data_id!r} used more memory than its limit of"
                f" {format_bytes(limits.max_memory)} (max_memory): peak"
                f" {format_bytes(peak)} seen in its process and that process's"
                " children; it was terminated"
            ),
        )
    host = socket.gethostname()
    if code is None:
        what = f"job process {pid} ended (how is unknown: its helper process died)"
    else:
        what = describe_exit(pid, code).replace("worker process", "job process", 1)
    return Outcome(
        failed,
        WorkerDiedError(f"{what} on {host} (dask worker {worker.address})"),
    )


def _retried(
    error: object, earlier: tuple[str, ...], retry: Retry | None, run: _RunOnWorker
) -> bool:
    # Only the task's own errors (the job's are packed) and only the classes
    # retry_on names itself, as on our own pool.
    return (
        retry is not None
        and isinstance(error, (WorkerDiedError, TimeoutError))
        and retry.names(type(error))
        and len(earlier) < retry.retries
        and not run.cancelled
    )


def _abandoned(worker, key) -> bool:
    # Read from the task's thread: a plain attribute the worker's event loop
    # sets when the scheduler releases the task.
    task = worker.state.tasks.get(key)
    return task is None or task.state in ("cancelled", "released", "forgotten")


def _timeout_error(job: Job, limits: Limits, terminated: bool) -> TimeoutError:
    text = f"{job.data_id!r} exceeded its timeout of {limits.timeout:g} s"
    if terminated:
        text += f" and was terminated {limits.grace:g} s later (cancel_grace)"
    return TimeoutError(text)
