"""Our own process pools: the supervisor that runs the jobs on them.

CPython's ``ProcessPoolExecutor`` fails every pending job when one worker
dies, and cannot stop a running job. The supervisor, one thread in the
parent, makes up for both:

* a worker that dies fails only the job it ran (``WorkerDiedError``); the
  jobs that the broken pool lost are run again on a fresh pool;
* a job past its ``timeout`` first sees its own ``handle.cancelled``; still
  running ``cancel_grace`` later, its worker (and that worker's children) is
  terminated. It ends FAILED with a ``TimeoutError``;
* after ``cancel()``, jobs still running when ``cancel_grace`` ends are
  terminated and end CANCELLED.

Who writes what: the pools' done callbacks (each pool's manager thread) pass
outcomes to the collector and tell the supervisor when a pool broke; only
the supervisor makes, replaces, terminates and shuts down pools. The
``Roster`` (shared memory) tells it which worker runs which job, since when.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import threading
import time
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext

import psutil

from .board import Roster, StopFlags
from .channel import ChannelEnd
from .collector import Collector
from .errors import WorkerDiedError, describe_exit
from .state import PreloadState, PreloadStatus
from .states import StateTable
from .worker import CANCELLED, Job, Outcome, init_process, outcome_of, run_job

TICK = 0.05
"""Seconds between two looks at running jobs, while a timeout is set."""

MAX_ATTEMPTS = 3
"""Runs of a job whose pool broke under it for no cause we could find, before
it fails (a job beside a worker known to have died is rerun without limit)."""

TERMINATE_WAIT = 1.0
"""Seconds a terminated process gets before it is killed."""


class PoolRunner:
    """Runs jobs on process pools it owns; replaces a pool that broke."""

    def __init__(
        self,
        jobs: list[Job],
        end: ChannelEnd,
        context: BaseContext,
        max_workers: int,
        collector: Collector,
        table: StateTable,
        timeout: float | None,
        cancel_grace: float | None,
    ):
        self._jobs = jobs
        self._end = end
        self._context = context
        self._max_workers = max_workers
        self._collector = collector
        self._table = table
        self._timeout = timeout
        self._grace = cancel_grace
        self._stops = StopFlags(context, len(jobs)) if timeout is not None else None
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._futures: dict[int, Future] = {}
        self._attempts: Counter[int] = Counter()
        self._timed_out: dict[int, float] = {}  # job index -> when flagged
        self._killed: set[int] = set()  # terminated past timeout + grace
        self._dead: dict[int, dict[int, tuple[int, int]]] = {}  # per pool
        self._cancelling = False
        self._cancel_deadline: float | None = None
        self._generation = 0
        self._pool: ProcessPoolExecutor | None = None
        self._roster: Roster | None = None
        self._workers: dict = {}
        self._manager_thread: threading.Thread | None = None
        self._new_pool(range(len(jobs)))
        self._thread = threading.Thread(
            target=self._supervise, name="preload-supervisor", daemon=True
        )
        self._thread.start()

    # -- called from other threads ---------------------------------------

    def cancel(self) -> None:
        """Cancel queued jobs now; terminate running ones after the grace."""
        done = threading.Event()
        self._events.put(("cancel", done))
        done.wait(2.0)

    def close(self) -> None:
        """Terminate what still runs, shut the pool down, end the supervisor."""
        self._events.put(("close",))
        self._thread.join()

    def running_pids(self) -> dict[str, int]:
        """Data id -> pid of the worker running it, for each running job."""
        roster = self._roster
        if roster is None:
            return {}
        return {self._jobs[r.index].data_id: r.pid for r in roster.running()}

    def abort(self) -> None:
        """Stop everything at once (the channel broke)."""
        self._events.put(("abort",))

    def _on_done(self, generation: int, index: int, future: Future) -> None:
        # Runs in the pool's manager thread: decide quickly, never block.
        error = None if future.cancelled() else future.exception()
        if isinstance(error, BrokenProcessPool):
            if generation not in self._dead:
                # The first callback of a broken pool runs before the pool
                # terminates its other workers: only the culprits are dead.
                self._dead[generation] = self._casualties()
                self._events.put(("broken", generation))
            return
        outcome = outcome_of(future)
        if not future.cancelled() and error is None and index in self._timed_out:
            outcome = outcome._replace(
                status=PreloadStatus.failed.value,
                exception=self._timeout_error(index, terminated=False),
            )
        self._collector.post_outcome(self._jobs[index].data_id, outcome)

    def _casualties(self) -> dict[int, tuple[int, int]]:
        """Job index -> (pid, exit code) of each dead worker that ran a job."""
        running = {r.pid: r.index for r in self._roster.running()}
        dead = {}
        for pid, process in list(self._workers.items()):
            exitcode = process.exitcode
            if exitcode is not None and pid in running:
                dead[running[pid]] = (pid, exitcode)
        return dead

    # -- the supervisor thread -------------------------------------------

    def _supervise(self) -> None:
        while True:
            try:
                event = self._events.get(timeout=self._next_look())
            except queue.Empty:
                event = ("look",)
            kind = event[0]
            if kind == "look":
                self._look()
            elif kind == "broken":
                self._replace_pool(event[1])
            elif kind == "cancel":
                self._cancel()
                event[1].set()
            elif kind == "abort":
                self._cancelling = True
                self._terminate_pool()
            elif kind == "close":
                self._cancelling = True
                while self._pool is not None:
                    if not self._table.done:
                        self._terminate_pool()
                    self._replace_pool(self._generation)
                self._futures.clear()
                self._workers = {}
                return

    def _next_look(self) -> float | None:
        if self._pool is None:
            return None
        if self._cancel_deadline is not None:
            return max(0.0, self._cancel_deadline - time.monotonic())
        return TICK if self._timeout is not None else None

    def _look(self) -> None:
        if self._pool is None:
            return
        now = time.monotonic()
        if self._cancel_deadline is not None and now >= self._cancel_deadline:
            self._cancel_deadline = None
            if not self._table.done:
                self._terminate_pool()
            return
        if self._timeout is None or self._cancelling:
            return
        for job in self._roster.running():
            flagged = self._timed_out.get(job.index)
            if flagged is None and now - job.since > self._timeout:
                self._stops.raise_flag(job.index)
                self._timed_out[job.index] = now
            elif (
                flagged is not None
                and self._grace is not None
                and now - flagged > self._grace
                and job.index not in self._killed
            ):
                self._killed.add(job.index)
                terminate_trees([job.pid])

    def _cancel(self) -> None:
        self._cancelling = True
        if self._pool is None:
            return
        # The pool's manager thread cancels and drops what is queued (on 3.11,
        # cancelling futures one by one, then breaking the pool, kills it).
        queued = [f for f in self._futures.values() if not (f.running() or f.done())]
        self._pool.shutdown(wait=False, cancel_futures=True)
        wait_futures(queued, timeout=1.0)
        if self._grace is not None:
            self._cancel_deadline = time.monotonic() + self._grace

    def _terminate_pool(self) -> None:
        terminate_trees(list(self._workers))

    def _new_pool(self, indexes) -> None:
        self._generation += 1
        self._roster = Roster(self._context, self._max_workers)
        # The function and its parameters, the same for every job, go to each
        # worker once; the jobs carry only their index and data id.
        function = self._jobs[0].function
        self._pool = ProcessPoolExecutor(
            self._max_workers,
            mp_context=self._context,
            initializer=init_process,
            initargs=(self._end, self._roster, self._stops, os.getpid(), function),
        )
        # The pool's own map of its workers (pid -> process); shutdown()
        # drops the pool's reference, this one stays current.
        self._workers = self._pool._processes
        for index in indexes:
            future = self._pool.submit(
                run_job, self._jobs[index]._replace(function=None)
            )
            future.add_done_callback(
                functools.partial(self._on_done, self._generation, index)
            )
            self._futures[index] = future
        # The pool spawns workers in submit(), after it has woken its manager
        # thread, which then waits on the sentinels of the workers it knew:
        # a worker spawned last could die unnoticed while the others run on.
        # Wake it once more, now that every worker is known.
        self._pool._executor_manager_thread_wakeup.wakeup()
        # shutdown(wait=False) forgets the pool's manager thread: keep it, to
        # join it when this pool is done.
        self._manager_thread = self._pool._executor_manager_thread

    def _replace_pool(self, generation: int) -> None:
        """Shut a broken pool down; settle or rerun each job it lost."""
        if generation != self._generation or self._pool is None:
            return
        self._pool.shutdown(wait=True)
        self._manager_thread.join()  # every callback of this pool has run
        self._pool = self._manager_thread = None
        was_running = {r.index for r in self._roster.running()}
        dead = self._dead.get(generation, {})
        cause = "; ".join(
            f"{describe_exit(pid, code)} while running {self._jobs[i].data_id!r}"
            for i, (pid, code) in dead.items()
        )
        rerun = []
        for index, future in list(self._futures.items()):
            if not future.done() or future.cancelled():
                continue
            error = future.exception()
            if not isinstance(error, BrokenProcessPool):
                continue
            del self._futures[index]
            data_id = self._jobs[index].data_id
            if index in self._killed:
                outcome = Outcome(
                    PreloadStatus.failed.value,
                    self._timeout_error(index, terminated=True),
                )
            elif self._cancelling:
                outcome = CANCELLED
            elif index in dead:
                pid, code = dead[index]
                outcome = Outcome(
                    PreloadStatus.failed.value,
                    WorkerDiedError(f"{describe_exit(pid, code)} while running it"),
                )
            elif dead or index not in was_running:
                rerun.append(index)  # a bystander: no fault of its own
                continue
            elif self._attempts[index] + 1 >= MAX_ATTEMPTS:
                outcome = Outcome(PreloadStatus.failed.value, error)
            else:
                self._attempts[index] += 1
                rerun.append(index)
                continue
            self._collector.post_outcome(data_id, outcome)
        for index in rerun:
            if index in was_running:
                self._collector.post_update(
                    PreloadState(
                        self._jobs[index].data_id,
                        message=f"run again on a fresh pool: {cause or 'it broke'}",
                    )
                )
        if rerun:
            self._new_pool(rerun)

    def _timeout_error(self, index: int, terminated: bool) -> TimeoutError:
        data_id = self._jobs[index].data_id
        text = f"{data_id!r} exceeded its timeout of {self._timeout:g} s"
        if terminated:
            text += f" and was terminated {self._grace:g} s later (cancel_grace)"
        return TimeoutError(text)


def terminate_trees(pids: list[int]) -> None:
    """Terminate each process and its children; kill what is alive after a while."""
    procs: list[psutil.Process] = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs += [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=TERMINATE_WAIT)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=TERMINATE_WAIT)
