"""Our own process pools: the supervisor that runs the jobs on them.

CPython's ``ProcessPoolExecutor`` fails every pending job when one worker
dies, and cannot stop a running job. The supervisor, one thread in the
parent, makes up for both:

* a worker that dies fails only the job it ran (``WorkerDiedError``); the
  jobs that the broken pool lost are run again on a fresh pool;
* a job that ended in its worker but whose result never arrived (it could
  not be unpickled, or the worker broke the pool after the job) is the
  suspect: it runs at most ``MAX_ATTEMPTS`` times, then fails
  (``ResultLostError``); no job is run again without bound;
* a job past its ``timeout`` first sees its own ``handle.cancelled``; still
  running ``cancel_grace`` later, its worker (and that worker's children) is
  terminated. It ends FAILED with a ``TimeoutError``;
* a job whose processes hold more than ``max_memory`` (sampled every
  ``SAMPLE`` seconds) is terminated and ends FAILED with a ``MemoryError``;
* ``cancel()`` ends the jobs not started CANCELLED before it returns; jobs
  still running when ``cancel_grace`` ends are terminated and end CANCELLED;
* ``close()`` terminates what still runs ``cancel_grace`` after the cancel,
  whatever the jobs reported;
* a job whose worker died or that was stopped past its timeout runs again,
  while its retries last, where ``retry_on`` names ``WorkerDiedError`` or
  ``TimeoutError`` (see ``retry.py``).

Jobs go to the workers in batches (``run_batch``), sized from the measured
job durations: one job per batch while durations are unknown or long, more
for jobs that end in microseconds, never more than leaves work for every
worker. A batch's jobs keep their own states, stop flags and timeouts (the
``Roster`` says which job runs); a worker that dies in a batch fails only the
job it was running; the batch's other jobs run again, each alone.

Each worker runs in a session of its own: terminating a job's worker
terminates its process group too, which reaches the grandchildren a job
detached (``sh -c "cmd &"``). Workers do not get the terminal's Ctrl-C.

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
import signal
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING

from ..board import ENDED, QUEUED, Phases, Roster, StopFlags
from ..channel import PipeChannel, PipeEnd
from ..collector import Collector
from ..errors import ResultLostError, WorkerDiedError, describe, describe_exit
from ..lifeline import temp_dir_to_clean
from ..limits import Limits
from ..retry import keep_earlier
from ..state import PreloadState, PreloadStatus
from ..states import StateTable
from ..worker import CANCELLED, Job, Outcome, outcome_of
from .in_worker import init_worker, run_batch

if TYPE_CHECKING:
    import psutil

TICK = 0.05
"""Seconds between two looks at running jobs, while a timeout is set."""

SAMPLE = 0.1
"""Seconds between two samples of the jobs' memory, while a limit is set."""

MAX_ATTEMPTS = 3
"""Runs of a job suspected of breaking its pool (its result never arrived, or
it ran when the pool broke for no cause we could find), before it fails."""

MAX_LOST = 20
"""Pools that may break under a job that is not suspected, before it fails."""

MAX_FAILED_STARTS = 2
"""Pools in a row whose workers all die as they start (a script without the
``if __name__ == "__main__":`` guard, a top level that fails in a worker),
before the jobs not run fail."""

TERMINATE_WAIT = 1.0
"""Seconds a terminated process gets before it is killed."""

BATCH_SECONDS = 0.02
"""How long a batch of short jobs should take in its worker."""

IN_FLIGHT = 2
"""Batches submitted per worker at a time (one running, one ready)."""


class PoolRunner:
    """Runs jobs on process pools it owns; replaces a pool that broke."""

    def __init__(
        self,
        jobs: list[Job],
        channel: PipeChannel,
        context: BaseContext,
        max_workers: int,
        collector: Collector,
        table: StateTable,
        limits: Limits,
    ):
        # The function, the same for every job, goes to each worker once (its
        # initializer); the batches carry each job's index, data id and
        # earlier failures.
        self._function = jobs[0].function
        self._jobs = jobs
        self._timeout, self._grace, self._max_memory, self._retry = limits
        self._retrying: set[int] = set()  # by a retry, on the next pool
        self._channel = channel
        self._end: PipeEnd = channel.end
        self._temp_dir = temp_dir_to_clean()
        self._context = context
        self._max_workers = max_workers
        self._collector = collector
        self._table = table
        self._stops = StopFlags(context, len(jobs))
        self._phases = Phases(context, len(jobs))
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._batches: dict[Future, tuple[int, ...]] = {}  # submitted, not settled
        self._batches_lock = threading.Lock()
        self._pending: deque[int] = deque(range(len(jobs)))  # not submitted
        self._alone: set[int] = set()  # to run in a batch of their own
        self._per_job: float | None = None  # seconds, measured in the workers
        self._size = 1  # of the latest batch
        self.batches = 0  # submitted so far
        self._attempts: Counter[int] = Counter()
        self._lost: Counter[int] = Counter()  # broken pools, not suspected
        self._timed_out: dict[int, float] = {}  # job index -> when flagged
        self._killed: set[int] = set()  # terminated past timeout + grace
        self._peaks: dict[int, int] = {}  # job index -> most memory seen
        self._over: set[int] = set()  # terminated past max_memory
        self._dead: dict[int, dict[int, tuple[int, int]]] = {}  # per pool
        self._failed_starts = 0  # pools in a row whose workers all died starting
        self._cancelling = False
        self._stop_by: float | None = None  # when the cancel's grace ends
        self._stopped = False  # what ran at the end of the grace was terminated
        self._generation = 0
        self._pool: ProcessPoolExecutor | None = None
        self._roster: Roster | None = None
        self._workers: dict = {}
        self._manager_thread: threading.Thread | None = None
        self._new_pool()
        self._thread = threading.Thread(
            target=self._supervise, name="preload-supervisor", daemon=True
        )
        self._thread.start()

    # -- called from other threads ---------------------------------------

    def cancel(self) -> None:
        """Post CANCELLED for the jobs not started; every job sees ``cancelled``;
        the supervisor terminates running ones after the grace."""
        self._cancelling = True
        # A job checks its flag before it starts: raised first, a job that
        # has not started yet will not.
        self._stops.raise_all()
        phases = self._phases.all()
        open_ids = set(self._table.open_ids())
        self._collector.post_outcomes(
            [
                (job.data_id, CANCELLED)
                for index, job in enumerate(self._jobs)
                if phases[index] == QUEUED and job.data_id in open_ids
            ]
        )
        self._events.put(("cancel",))

    def close(self, grace: float | None) -> None:
        """Give running jobs at most *grace* more seconds (None: what is left
        of the cancel grace, if any), terminate what still runs, shut the pool
        down, end the supervisor."""
        self._events.put(("close", grace))
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

    def _on_done(
        self, generation: int, indexes: tuple[int, ...], future: Future
    ) -> None:
        # Runs in the pool's manager thread: decide quickly, never block.
        error = None if future.cancelled() else future.exception()
        if isinstance(error, BrokenProcessPool):
            if generation not in self._dead:
                # The first callback of a broken pool runs before the pool
                # terminates its other workers: only the culprits are dead.
                self._dead[generation] = self._casualties()
                self._events.put(("broken", generation))
            return
        with self._batches_lock:
            del self._batches[future]
        ran = not future.cancelled() and error is None
        if ran:
            plain, seconds = future.result()
            outcomes = [Outcome._make(outcome) for outcome in plain]
        else:
            # Cancelled while queued; or the first job raised what is not an
            # Exception (run_batch then runs no other).
            outcomes, seconds = [outcome_of(future)], None
        settled = []
        for index, outcome in zip(indexes, outcomes, strict=False):
            if ran and index in self._timed_out:
                timeout = self._timeout_error(index, terminated=False)
                # What failed before, in its worker too.
                earlier = outcome.earlier
                if self._may_retry(timeout, earlier):
                    # The messages it did not send yet still count.
                    self._collector.deliver(list(outcome.tail))
                    self._events.put(("retry", index, timeout, earlier))
                    continue
                outcome = outcome._replace(
                    status=PreloadStatus.failed.value,
                    exception=self._with_earlier(timeout, earlier),
                )
            settled.append((self._jobs[index].data_id, outcome))
        self._collector.post_outcomes(settled)
        # Jobs without an outcome: after one that raised what is not an
        # Exception, which ends its batch (run_batch). That job runs again
        # alone, unless it was the first (then its error is its outcome).
        left = indexes[len(outcomes) :]
        alone = left[:1] if ran else ()
        if future.cancelled():
            left = ()
            self._collector.post_outcomes(
                [(self._jobs[index].data_id, CANCELLED) for index in indexes[1:]]
            )
        self._events.put(("done", len(outcomes), seconds, left, alone))

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
            elif kind == "done":
                self._batch_done(*event[1:])
            elif kind == "broken":
                self._replace_pool(event[1])
            elif kind == "retry":
                self._retry_now(*event[1:])
            elif kind == "cancel":
                self._cancel()
            elif kind == "abort":
                self._cancelling = True
                self._terminate_pool()
            elif kind == "close":
                self._close(event[1])
                return

    def _next_look(self) -> float | None:
        if self._pool is None:
            return None
        waits = []
        if self._stop_by is not None and not self._stopped:
            waits.append(max(0.0, self._stop_by - time.monotonic()))
        if self._timeout is not None and not self._cancelling:
            waits.append(TICK)
        if self._max_memory is not None:
            waits.append(SAMPLE)
        return min(waits, default=None)

    def _look(self) -> None:
        if self._pool is None:
            return
        now = time.monotonic()
        if self._stop_by is not None and not self._stopped and now >= self._stop_by:
            self._stopped = True
            if self._busy():
                self._terminate_pool()
            return
        running = self._roster.running()
        if self._max_memory is not None:
            self._sample_memory(running)
        if self._timeout is None or self._cancelling:
            return
        for job in running:
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

    def _sample_memory(self, running) -> None:
        for job in running:
            if job.index in self._over:
                continue
            used = tree_memory(job.pid)
            self._peaks[job.index] = max(used, self._peaks.get(job.index, 0))
            if used > self._max_memory:
                self._over.add(job.index)
                terminate_trees([job.pid])

    def _cancel(self) -> None:
        self._cancelling = True
        with contextlib.suppress(EOFError, OSError):  # a dead Manager
            self._end.request_cancel()
        if self._pool is None:
            return
        # The pool's manager thread cancels and drops what is queued (on 3.11,
        # cancelling futures one by one, then breaking the pool, kills it);
        # cancel() has posted their outcomes already.
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._grace is not None and self._stop_by is None:
            self._stop_by = time.monotonic() + self._grace

    def _close(self, grace: float | None) -> None:
        """Give running jobs what is left of the grace (whatever they reported),
        at most *grace*, terminate what still runs, shut the pools down."""
        self._stops.raise_all()
        self._cancel()
        running = [f for f in self._submitted() if f.running()]
        if running and self._pool is not None:
            left = grace
            if self._stop_by is not None:
                left = max(0.0, self._stop_by - time.monotonic())
                if grace is not None:
                    left = min(left, grace)
            # Running futures only: a cancelled queued one never wakes wait().
            wait_futures(running, timeout=left)
        while self._pool is not None:
            if self._busy():
                self._terminate_pool()
            self._replace_pool(self._generation)
        self._batches.clear()
        self._workers = {}

    def _submitted(self) -> list[Future]:
        with self._batches_lock:
            return list(self._batches)

    def _busy(self) -> bool:
        """True while a job of ours runs (or is about to), whatever it reported."""
        return any(f.running() for f in self._submitted())

    def _terminate_pool(self) -> None:
        terminate_trees(list(self._workers))

    def _new_pool(self) -> None:
        self._generation += 1
        self._roster = Roster(self._context, self._max_workers, self._phases)
        self._pool_end = self._channel.end_for_pool(self._max_workers)
        self._pool = ProcessPoolExecutor(
            self._max_workers,
            mp_context=self._context,
            initializer=init_worker,
            initargs=(
                self._pool_end,
                self._roster,
                self._stops,
                os.getpid(),
                self._temp_dir,
                self._function,
            ),
        )
        # The pool's own map of its workers (pid -> process); shutdown()
        # drops the pool's reference, this one stays current.
        self._workers = self._pool._processes
        self._feed()

    def _feed(self) -> None:
        """Submit batches until each worker has IN_FLIGHT of them."""
        if self._pool is None or self._cancelling:
            return
        spawned = len(self._workers)
        room = IN_FLIGHT * self._max_workers - len(self._batches)
        while self._pending and room > 0:
            room -= 1
            batch = [self._pending.popleft()]
            if batch[0] not in self._alone:
                size = self._batch_size()
                while len(batch) < size and self._pending:
                    if self._pending[0] in self._alone:
                        break
                    batch.append(self._pending.popleft())
            indexes = tuple(batch)
            wire = tuple(
                (i, self._jobs[i].data_id, self._jobs[i].earlier) for i in indexes
            )
            try:
                future = self._pool.submit(run_batch, wire)
            except BrokenProcessPool:
                # Broken since the last look: the batch waits for a fresh pool
                # (the "broken" event may be on its way; a second is ignored).
                self._pending.extendleft(reversed(indexes))
                self._events.put(("broken", self._generation))
                break
            self._alone.difference_update(indexes)
            with self._batches_lock:
                self._batches[future] = indexes
            self.batches += 1
            future.add_done_callback(
                functools.partial(self._on_done, self._generation, indexes)
            )
        if self._manager_thread is None:
            # Started by the pool's first submit. shutdown(wait=False) forgets
            # it: keep it, to join it when this pool is done.
            self._manager_thread = self._pool._executor_manager_thread
        if len(self._workers) != spawned:
            # The pool spawns workers in submit(), after it has woken its
            # manager thread, which then waits on the sentinels of the workers
            # it knew: a worker spawned last could die unnoticed while the
            # others run on. Wake it once more, now that every worker is known.
            self._pool._executor_manager_thread_wakeup.wakeup()

    def _batch_size(self) -> int:
        """Jobs for the next batch: BATCH_SECONDS of them, growing at most
        twofold a batch, one while durations are unknown, and never so many
        that a worker is left without work."""
        if self._per_job is None:
            return 1
        ideal = int(BATCH_SECONDS / max(self._per_job, 1e-6))
        share = len(self._pending) // (IN_FLIGHT * self._max_workers) + 1
        self._size = max(1, min(ideal, 2 * self._size, share))
        return self._size

    def _batch_done(
        self,
        count: int,
        seconds: float | None,
        left: tuple[int, ...],
        alone: tuple[int, ...],
    ) -> None:
        if seconds is not None and count:
            per_job = seconds / count
            if self._per_job is not None:
                per_job = (per_job + self._per_job) / 2
            self._per_job = per_job
        if left and not self._cancelling:
            for index in left:
                self._phases.set(index, QUEUED)
            self._alone.update(alone)
            self._pending.extendleft(reversed(left))
        self._feed()

    def _may_retry(self, error: Exception, earlier: tuple[str, ...]) -> bool:
        """True if a job may run again after *error* (a WorkerDiedError or a
        TimeoutError of ours; *earlier*: the failures before it):
        ``retry_on`` names its class itself, and retries are left."""
        retry = self._retry
        return (
            retry is not None
            and not self._cancelling
            and retry.names(type(error))
            and len(earlier) < retry.retries
        )

    def _with_earlier(self, error: Exception, earlier: tuple[str, ...]) -> Exception:
        if self._retry is not None:
            keep_earlier(error, list(earlier), self._retry.retries + 1)
        return error

    def _prepare_retry(
        self, index: int, error: Exception, earlier: tuple[str, ...]
    ) -> None:
        """The job's next run starts with a wait and knows *error*."""
        job = self._jobs[index]
        self._jobs[index] = job._replace(earlier=(*earlier, describe(error)))
        self._timed_out.pop(index, None)
        self._killed.discard(index)
        self._stops.lower(index)
        if self._cancelling:  # cancel() raised every flag before we lowered it
            self._stops.raise_flag(index)

    def _retry_now(
        self, index: int, error: Exception, earlier: tuple[str, ...]
    ) -> None:
        """Run a job that timed out (and stopped) again on the current pool."""
        if self._pool is None or self._cancelling:
            outcome = (
                CANCELLED
                if self._cancelling
                else Outcome(PreloadStatus.failed.value, error)
            )
            self._collector.post_outcome(self._jobs[index].data_id, outcome)
            return
        self._prepare_retry(index, error, earlier)
        self._phases.set(index, QUEUED)
        self._alone.add(index)
        self._pending.appendleft(index)
        self._feed()

    def _replace_pool(self, generation: int) -> None:
        """Shut a broken pool down; settle or rerun each job it lost."""
        if generation != self._generation or self._pool is None:
            return
        self._pool.shutdown(wait=True)
        if self._manager_thread is not None:  # None: nothing was submitted
            self._manager_thread.join()  # every callback of this pool has run
        self._channel.retire(self._pool_end)
        self._pool = self._manager_thread = None
        running = self._roster.running()
        # The pool terminated its other workers, not what their jobs started:
        # end those too (each worker leads its own process group).
        _signal_groups([r.pid for r in running], signal.SIGKILL)
        was_running = {r.index for r in running}
        dead = self._dead.get(generation, {})
        lost = {}
        with self._batches_lock:
            for future, indexes in list(self._batches.items()):
                if future.done() and not future.cancelled():
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        lost.update(dict.fromkeys(indexes, error))
                        del self._batches[future]
        if self._ended_as_workers_never_start(lost):
            return
        # No worker died while running a job: a job that ended in its worker,
        # but whose result never arrived, broke the pool.
        phases = self._phases.all()
        suspects = set()
        if not dead:
            suspects = {i for i in lost if phases[i] == ENDED and i not in was_running}
        cause = "; ".join(
            f"{describe_exit(pid, code)} while running {self._jobs[i].data_id!r}"
            for i, (pid, code) in dead.items()
        )
        if suspects and not cause:
            names = ", ".join(repr(self._jobs[i].data_id) for i in sorted(suspects))
            cause = f"the result of {names} could not be received"
        rerun = []
        for index, error in lost.items():
            outcome = self._settle(index, error, dead, suspects, index in was_running)
            if outcome is None:
                rerun.append(index)
            else:
                self._collector.post_outcome(self._jobs[index].data_id, outcome)
        for index in rerun:
            if phases[index] != QUEUED and index not in self._retrying:
                self._collector.post_update(
                    PreloadState(
                        self._jobs[index].data_id,
                        message=f"run again on a fresh pool: {cause or 'it broke'}",
                    )
                )
        for index in rerun:
            self._phases.set(index, QUEUED)
        # Alone, each job that may be what broke the pool; jobs that had not
        # started go in batches again.
        self._alone.update(i for i in rerun if i in suspects or i in was_running)
        self._pending.extendleft(reversed(rerun))
        self._retrying.clear()
        if self._pending and not self._cancelling:
            self._new_pool()

    def _ended_as_workers_never_start(self, lost: dict[int, BrokenProcessPool]) -> bool:
        """If no worker of the broken pool got through its start, for the
        MAX_FAILED_STARTS-th pool in a row, fail each job not run (a fresh pool
        would die the same way) and return True."""
        if self._roster.claimed or self._cancelling:
            self._failed_starts = 0
            return False
        self._failed_starts += 1
        if self._failed_starts < MAX_FAILED_STARTS:
            return False
        exits = ", ".join(
            describe_exit(pid, process.exitcode)
            for pid, process in self._workers.items()
            if process.exitcode
        )
        text = (
            f"the worker processes died as they started ({exits or 'no exit code'})"
            f" in {MAX_FAILED_STARTS} pools in a row; their error is on stderr. A"
            ' script must start a preload under `if __name__ == "__main__":`:'
            " each worker runs the script's top level again."
        )
        unrun = [*lost, *self._pending]
        self._pending.clear()
        failed = PreloadStatus.failed.value
        self._collector.post_outcomes(
            [
                (self._jobs[i].data_id, Outcome(failed, WorkerDiedError(text)))
                for i in unrun
            ]
        )
        return True

    def _settle(
        self,
        index: int,
        error: BrokenProcessPool,
        dead: dict[int, tuple[int, int]],
        suspects: set[int],
        was_running: bool,
    ) -> Outcome | None:
        """The outcome of a job a broken pool lost, or None to run it again."""
        failed = PreloadStatus.failed.value
        if index in self._killed:
            return self._retry_or_fail(
                index, self._timeout_error(index, terminated=True)
            )
        if index in self._over:
            return Outcome(failed, self._memory_error(index))
        if self._cancelling:
            return CANCELLED
        if index in dead:
            pid, code = dead[index]
            return self._retry_or_fail(
                index, WorkerDiedError(f"{describe_exit(pid, code)} while running it")
            )
        if index in suspects or (was_running and not dead and not suspects):
            self._attempts[index] += 1
            if self._attempts[index] < MAX_ATTEMPTS:
                return None
            if index in suspects:
                return Outcome(failed, self._result_lost_error(index, error))
            return Outcome(failed, error)
        self._lost[index] += 1
        if self._lost[index] < MAX_LOST:
            return None
        return Outcome(
            failed,
            BrokenProcessPool(f"its process pool broke {MAX_LOST} times under it"),
        )

    def _retry_or_fail(self, index: int, error: Exception) -> Outcome | None:
        """None to run the job again, where its retries allow; else FAILED."""
        # Failures in its worker before it died or was stopped are not known.
        earlier = self._jobs[index].earlier
        if self._may_retry(error, earlier):
            self._prepare_retry(index, error, earlier)
            self._retrying.add(index)
            return None
        return Outcome(PreloadStatus.failed.value, self._with_earlier(error, earlier))

    def _result_lost_error(
        self, index: int, error: BrokenProcessPool
    ) -> ResultLostError:
        # The cause's text is a traceback, between lines of three quotes.
        text = str(error.__cause__ or error).splitlines()
        why = [line for line in text if line.strip() not in ("", "'''")]
        return ResultLostError(
            f"{self._jobs[index].data_id!r} ended in its worker, but its result"
            f" could not be received ({self._attempts[index]} attempts): {why[-1]}"
        )

    def _memory_error(self, index: int) -> MemoryError:
        return MemoryError(
            f"{self._jobs[index].data_id!r} used more memory than its limit of"
            f" {format_bytes(self._max_memory)} (max_memory): peak"
            f" {format_bytes(self._peaks[index])} seen in its worker and the"
            " worker's children; it was terminated"
        )

    def _timeout_error(self, index: int, terminated: bool) -> TimeoutError:
        data_id = self._jobs[index].data_id
        text = f"{data_id!r} exceeded its timeout of {self._timeout:g} s"
        if terminated:
            text += f" and was terminated {self._grace:g} s later (cancel_grace)"
        return TimeoutError(text)


def terminate_trees(pids: list[int]) -> None:
    """Terminate each process, its children and, for a worker of ours (the
    leader of its own process group), its group; kill what is alive after a
    while."""
    import psutil  # here: ~10 ms that a worker importing this module skips

    procs: list[psutil.Process] = []
    groups = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            procs += [proc, *proc.children(recursive=True)]
            if os.getpgid(pid) == pid:
                groups.append(pid)
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass
    _signal_groups(groups, signal.SIGTERM)
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=TERMINATE_WAIT)
    # Members of a group outlive it only as long as they hold its id: no
    # process outside them can have it.
    _signal_groups(groups, signal.SIGKILL)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=TERMINATE_WAIT)


def _signal_groups(groups: list[int], signum: int) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signum)


def tree_memory(pid: int) -> int:
    """Bytes of resident memory of process *pid* and its descendants."""
    import psutil

    total = 0
    for member in [pid, *_descendants(pid)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += psutil.Process(member).memory_info().rss
    return total


_PROC_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def _descendants(pid: int) -> list[int]:
    # Linux lists each thread's children in /proc: microseconds, where
    # psutil's children() reads every process of the machine (~3 ms).
    if not _PROC_CHILDREN:
        import psutil

        with contextlib.suppress(psutil.NoSuchProcess):
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        return []
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as file:
                found += [int(child) for child in file.read().split()]
    except OSError:  # ended meanwhile
        pass
    for child in list(found):
        found += _descendants(child)
    return found


def format_bytes(n: int) -> str:
    """'200 MB', '2.15 GB': a size as users read it (powers of 1000)."""
    if n >= 1e9:
        return f"{n / 1e9:.4g} GB"
    return f"{n / 1e6:.4g} MB"
