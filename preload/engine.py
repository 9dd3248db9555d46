"""The parent side of one preload run: channel, runner, collector, states.

Who owns what:
* the runner runs the jobs: a ``PoolRunner`` on process pools the engine
  owns (see ``pool.py``), or an ``ExecutorRunner`` on an executor the
  caller gave, which is used and never shut down;
* the channel carries the jobs' messages and the cancel flag (see
  ``channel.py``); the engine makes it to fit the executor;
* the executor's done callbacks pass each job's outcome to the collector;
* the collector thread is the only writer of the ``StateTable``.

An engine not closed when the interpreter exits is closed then, with no
grace, before ``concurrent.futures`` waits for its pools' workers.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any

import psutil

from .channel import Channel, ManagerChannel, ThreadChannel
from .collector import Collector
from .display import Display
from .pool import PoolRunner
from .state import PreloadState, PreloadStatus
from .states import StateTable
from .worker import Job, JobFunction, outcome_of, run_job

MakeDisplay = Callable[
    [StateTable, Callable[[], dict[str, int]] | None, Callable[[], None]], Display
]
"""Makes a run's display from its states, the pids of running jobs (None
where unknown) and the run's cancel()."""


def default_mp_context(modules: Sequence[str] = ()) -> BaseContext:
    """forkserver where there is (it never forks a process with threads), else
    spawn. A forkserver not yet running will import *modules* up front."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        _preload_in_forkserver(["preload.worker", *modules])
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def _preload_in_forkserver(modules: Sequence[str]) -> None:
    # A forkserver that has imported the worker module starts each worker
    # and Manager in ~12 ms instead of ~80 ms; one that has imported the job
    # function's module spares every worker that import (xarray and zarr for
    # preload.convert: ~0.9 s a worker). Keep what is preloaded already (by
    # default __main__); this takes effect if the forkserver is not running.
    # A module it cannot import (on 3.11 the forkserver has a fresh
    # interpreter's sys.path, without changes made at runtime) is skipped;
    # the workers import it themselves then.
    from multiprocessing import forkserver

    preloaded = getattr(forkserver._forkserver, "_preload_modules", None)
    if preloaded is None:
        return
    missing = [m for m in modules if m not in preloaded]
    if missing:
        forkserver.set_forkserver_preload([*preloaded, *missing])


def importable_module(function: Callable[..., Any]) -> str | None:
    """The module a worker imports to find *function*, if it has one: not
    ``__main__``, and already imported here (so importing it succeeds)."""
    name = getattr(function, "__module__", None)
    module = sys.modules.get(name) if name else None
    if name == "__main__" or getattr(module, "__file__", None) is None:
        return None
    return name


def usable_cpus() -> int:
    try:
        return len(psutil.Process().cpu_affinity()) or 1
    except (AttributeError, psutil.Error):
        return os.cpu_count() or 1


def uses_threads(executor: Executor | None) -> bool:
    """True if *executor* runs jobs in threads of this process."""
    return isinstance(executor, ThreadPoolExecutor)


class ExecutorRunner:
    """Runs jobs on an executor the caller owns."""

    def __init__(
        self,
        executor: Executor,
        jobs: list[Job],
        channel: Channel,
        collector: Collector,
    ):
        self._collector = collector
        # Ends of a ThreadChannel stay in this process; others are pickled with
        # every job, since we cannot hand them to the executor's workers once.
        self._futures = []
        for job in jobs:
            future = executor.submit(run_job, job, channel.end)
            future.add_done_callback(functools.partial(self._on_done, job.data_id))
            self._futures.append(future)

    def _on_done(self, data_id: str, future: Future) -> None:
        self._collector.post_outcome(data_id, outcome_of(future))

    def cancel(self) -> None:
        for future in self._futures:
            future.cancel()

    def close(self) -> None:
        """Nothing to release: the executor is the caller's."""

    def abort(self) -> None:
        self.cancel()


class Engine:
    """Runs one job per data id and keeps their states."""

    def __init__(
        self,
        data_ids: Sequence[str],
        function: bytes | JobFunction,
        token: str,
        executor: Executor | None,
        max_workers: int | None,
        mp_context: BaseContext | str | None,
        timeout: float | None,
        cancel_grace: float | None,
        make_display: MakeDisplay | None,
        function_module: str | None = None,
        max_memory: int | None = None,
    ):
        self.table = StateTable(data_ids)
        self._cancelled = threading.Event()
        self._closed = False
        self.channel: Channel | None = None
        self._runner: PoolRunner | ExecutorRunner | None = None
        self.display = None
        if make_display is not None:
            running = self._running_pids if executor is None else None
            self.display = make_display(self.table, running, self.cancel)
        self.collector = Collector(self.table, self.display)
        if not data_ids:
            return
        _open_engines.add(self)
        try:
            ids = frozenset(data_ids)
            jobs = [Job(i, d, function) for i, d in enumerate(data_ids)]
            if uses_threads(executor):
                self.channel = ThreadChannel(ids, token)
            else:
                if isinstance(mp_context, str):
                    mp_context = multiprocessing.get_context(mp_context)
                modules = [function_module] if function_module else []
                context = mp_context or default_mp_context(modules)
                self.channel = ManagerChannel(ids, token, context)
            self.channel.start(self.collector.deliver, self._channel_lost)
            if executor is None:
                self._runner = PoolRunner(
                    jobs,
                    self.channel.end,
                    context,
                    max_workers or min(len(jobs), usable_cpus()),
                    self.collector,
                    self.table,
                    timeout,
                    cancel_grace,
                    max_memory,
                )
            else:
                self._runner = ExecutorRunner(
                    executor, jobs, self.channel, self.collector
                )
        except BaseException:
            self.close(grace=0)
            raise

    def _running_pids(self) -> dict[str, int]:
        runner = self._runner
        return runner.running_pids() if isinstance(runner, PoolRunner) else {}

    @property
    def cancel_requested(self) -> bool:
        return self._cancelled.is_set() or (
            self.channel is not None and self.channel.cancel_requested()
        )

    def notify(self, state: PreloadState) -> None:
        """Apply a state change reported from outside the jobs."""
        self.collector.post_update(state)

    def cancel(self) -> None:
        """Raise the cancel flag and cancel the jobs that have not started."""
        self._cancelled.set()
        if isinstance(self._runner, PoolRunner):
            # Its jobs see their stop flags at once; it raises the channel's
            # flag (a Manager round trip) in the background.
            self._runner.cancel()
        else:
            if self.channel is not None:
                self.channel.cancel()
            if self._runner is not None:
                self._runner.cancel()
        self.collector.sync(timeout=1.0)

    def close(self, grace: float | None) -> None:
        """Cancel, give running jobs *grace* seconds, then release everything."""
        if self._closed:
            return
        self._closed = True
        if not self.table.done:
            self.cancel()
            self.table.wait(grace)
        if self._runner is not None:
            self._runner.close()
        if self.channel is not None:
            self.channel.close()
        for data_id in self.table.open_ids():
            # Still running in a caller's executor, which we may not stop.
            self.collector.post_update(
                PreloadState(
                    data_id,
                    PreloadStatus.cancelled,
                    message="still running when the handle was closed",
                )
            )
        self.collector.stop()
        # Drop what holds pipes and sockets now, not at the next garbage
        # collection (futures and their callbacks make reference cycles).
        self._runner = self.channel = None
        _open_engines.discard(self)

    def _channel_lost(self, error: Exception) -> None:
        # In the channel's receiver thread: no job can report or be
        # cancelled any more; end them all, with the reason.
        self.collector.channel_lost()
        for data_id in self.table.open_ids():
            self.collector.post_update(
                PreloadState(data_id, PreloadStatus.failed, exception=error)
            )
        if self._runner is not None:
            self._runner.abort()


_open_engines: set[Engine] = set()


def _close_open_engines() -> None:
    for engine in list(_open_engines):
        engine.close(grace=0)


# Run before concurrent.futures' own exit hook, which waits for running jobs
# (hooks registered later run first).
_register = getattr(threading, "_register_atexit", None)
if _register is not None:
    _register(_close_open_engines)
else:  # pragma: no cover - every CPython we support has it
    import atexit

    atexit.register(_close_open_engines)
