"""The parent side of one preload run: executor, channel, collector, states.

Who owns what:
* the executor runs the jobs. By default it is a ``ProcessPoolExecutor``
  that the engine makes and shuts down; an executor given by the caller is
  used and never shut down;
* the channel carries the jobs' messages and the cancel flag (see
  ``channel.py``); the engine makes it to fit the executor;
* the executor's done callbacks pass each job's outcome to the collector;
* the collector thread is the only writer of the ``StateTable``.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from multiprocessing.context import BaseContext

import psutil

from .channel import Channel, ManagerChannel, ThreadChannel
from .collector import Collector, OnStatus
from .state import PreloadState, PreloadStatus
from .states import StateTable
from .worker import Job, JobFunction, Outcome, init_process, run_job

TERMINATE_WAIT = 1.0
"""Seconds a terminated worker gets before it is killed."""


def default_mp_context() -> BaseContext:
    """forkserver where there is (it never forks a process with threads), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        _preload_in_forkserver()
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def _preload_in_forkserver() -> None:
    # A forkserver that has imported the worker module starts each worker
    # and Manager in ~12 ms instead of ~80 ms. Keep what is preloaded already
    # (by default __main__); this takes effect if the forkserver is not running.
    from multiprocessing import forkserver

    modules = getattr(forkserver._forkserver, "_preload_modules", None)
    if modules is not None and "preload.worker" not in modules:
        forkserver.set_forkserver_preload([*modules, "preload.worker"])


def usable_cpus() -> int:
    try:
        return len(psutil.Process().cpu_affinity()) or 1
    except (AttributeError, psutil.Error):
        return os.cpu_count() or 1


def uses_threads(executor: Executor | None) -> bool:
    """True if *executor* runs jobs in threads of this process."""
    return isinstance(executor, ThreadPoolExecutor)


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
        on_status: OnStatus | None,
    ):
        self.table = StateTable(data_ids)
        self._futures: list[Future] = []
        self._cancelled = threading.Event()
        self._closed = False
        self._terminated = False
        self._own_executor: ProcessPoolExecutor | None = None
        self._workers: dict = {}
        self.channel: Channel | None = None
        self.collector = Collector(self.table, on_status)
        if not data_ids:
            return
        try:
            self._start(data_ids, function, token, executor, max_workers, mp_context)
        except BaseException:
            self.close(grace=0)
            raise

    def _start(
        self,
        data_ids: Sequence[str],
        function: bytes | JobFunction,
        token: str,
        executor: Executor | None,
        max_workers: int | None,
        mp_context: BaseContext | str | None,
    ) -> None:
        ids = frozenset(data_ids)
        if uses_threads(executor):
            self.channel = ThreadChannel(ids, token)
        else:
            if isinstance(mp_context, str):
                mp_context = multiprocessing.get_context(mp_context)
            context = mp_context or default_mp_context()
            self.channel = ManagerChannel(ids, token, context)
            if executor is None:
                executor = self._own_executor = ProcessPoolExecutor(
                    max_workers or min(len(data_ids), usable_cpus()),
                    mp_context=context,
                    initializer=init_process,
                    initargs=(self.channel.end,),
                )
                # The pool's own map of its workers (pid -> process); shutdown()
                # drops the pool's reference, this one stays current.
                self._workers = executor._processes
        self.channel.start(self.collector.deliver)
        # Our own pool's workers got the channel end once, in the initializer.
        end = None if self._own_executor else self.channel.end
        for data_id in data_ids:
            future = executor.submit(run_job, Job(data_id, function), end)
            future.add_done_callback(functools.partial(self._on_done, data_id))
            self._futures.append(future)

    @property
    def cancel_requested(self) -> bool:
        return self._cancelled.is_set() or (
            self.channel is not None and self.channel.cancel_requested()
        )

    def _on_done(self, data_id: str, future: Future) -> None:
        # Runs in the executor's thread: hand over, never block.
        if future.cancelled():
            outcome = Outcome(PreloadStatus.cancelled.value)
        elif future.exception() is None:
            outcome = future.result()
        elif self._terminated:
            outcome = Outcome(PreloadStatus.cancelled.value)
        else:
            outcome = Outcome(PreloadStatus.failed.value, future.exception())
        self.collector.post_outcome(data_id, outcome)

    def notify(self, state: PreloadState) -> None:
        """Apply a state change reported from outside the jobs."""
        self.collector.post_update(state)

    def cancel(self) -> None:
        """Raise the cancel flag and cancel the jobs that have not started."""
        self._cancelled.set()
        if self.channel is None:
            return
        self.channel.cancel()
        if self._own_executor is not None:
            # The pool's manager thread cancels what is queued, and drops it
            # (on 3.11, cancelling futures one by one and then breaking the
            # pool would kill that thread).
            queued = [f for f in self._futures if not (f.running() or f.done())]
            self._own_executor.shutdown(wait=False, cancel_futures=True)
            wait_futures(queued, timeout=1.0)
        else:
            for future in self._futures:
                future.cancel()
        self.collector.sync(timeout=1.0)

    def close(self, grace: float | None) -> None:
        """Cancel, give running jobs *grace* seconds, then release everything."""
        if self._closed:
            return
        self._closed = True
        self.cancel()
        if not self.table.wait(grace) and self._own_executor is not None:
            self._terminate_workers()
        if self._own_executor is not None:
            self._own_executor.shutdown(wait=True)
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

    def _terminate_workers(self) -> None:
        """Stop our pool's workers and their children, so running jobs end."""
        self._terminated = True
        procs: list[psutil.Process] = []
        for process in list(self._workers.values()):
            try:
                worker = psutil.Process(process.pid)
                procs += [worker, *worker.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        terminate_all(procs)


def terminate_all(procs: list[psutil.Process]) -> None:
    """Terminate *procs*, then kill those still alive after ``TERMINATE_WAIT``."""
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=TERMINATE_WAIT)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=TERMINATE_WAIT)
