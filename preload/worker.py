"""Worker side: runs one job and gives it the handle it sees.

Whatever runs a job (a worker process of our pool, a caller's executor, a
thread) calls ``run_job``. It loads the job's function, posts ``started``,
calls the function with a ``JobHandle`` and returns the job's ``Outcome``:
its final status, exception, the messages not yet sent and how many were
sent. The outcome travels back with the job's future; the messages travel
through the channel.
"""

from __future__ import annotations

import pickle
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, NamedTuple

from .board import Roster, StopFlags
from .channel import ChannelEnd
from .errors import PackedError, describe, pack
from .handle import PreloadHandle
from .lifeline import hold_on_to
from .retry import Retry, keep_earlier, wait_unless, waiting_message
from .state import Message, PreloadState, PreloadStatus, check_update, to_message


class JobFunction(NamedTuple):
    """What a job calls: ``function(handle, data_id, **params)``, or, where
    *bound* (a handle's own ``preload_data`` method), ``function(data_id, **...)``;
    and how it is retried (None: never)."""

    function: Callable[..., Any]
    params: dict[str, Any]
    bound: bool
    retry: Retry | None = None


class Job(NamedTuple):
    """One job: its index among the run's ids, the data id, and the function,
    pickled (cloudpickle) for another process or as it is for a thread; None
    for the function this worker process was given once (``init_process``)."""

    index: int
    data_id: str
    function: bytes | JobFunction | None
    earlier: tuple[str, ...] = ()
    """The failures of the attempts before this one, as ``describe()`` gives
    them, where the parent runs the job again (a worker that died)."""


class Outcome(NamedTuple):
    """How a job ended, as the parent's collector applies it."""

    status: str
    exception: BaseException | PackedError | None = None
    tail: tuple[Message, ...] | list[Message] = ()
    sent: int = 0
    earlier: tuple[str, ...] = ()
    """The failures of the job's earlier attempts (``describe()``)."""


CANCELLED = Outcome(PreloadStatus.cancelled.value)


def outcome_of(future: Future) -> Outcome:
    """How the job of a done *future* ended: the Outcome it returned, or one
    made from the future's cancellation or exception."""
    if future.cancelled():
        return CANCELLED
    error = future.exception()
    if error is not None:
        return Outcome(PreloadStatus.failed.value, error)
    return future.result()


_local = threading.local()

# The job running in this worker process of our own pool (one at a time).
_process_job: JobHandle | None = None


def current_job(token: str) -> JobHandle | None:
    """The handle of the job of channel *token* running in this thread, if any.

    In a worker process of our own pool, every thread belongs to the job the
    process runs: a thread that runs no job of its own (a job's helper thread)
    gets that job.
    """
    job = getattr(_local, "job", None)
    if job is None:
        job = _process_job
    return job if job is not None and job.end.token == token else None


class JobHandle(PreloadHandle):
    """The handle a job sees in its worker: ``notify`` posts to the channel,
    ``cancelled`` reads the shared cancel flag."""

    def __init__(self, end: ChannelEnd, job: Job, stops: StopFlags | None = None):
        self.end = end
        self.data_id = job.data_id
        self._index = job.index
        self._stops = stops
        self._outbox = end.outbox()
        self._saw_cancel = False
        self._state = PreloadState(self.data_id, status=PreloadStatus.started)
        self.earlier = list(job.earlier)

    @property
    def cancelled(self) -> bool:
        """True once the preload was cancelled, or this job timed out."""
        if self.end.cancel_requested() or (
            self._stops is not None and self._stops.is_raised(self._index)
        ):
            self._saw_cancel = True
            return True
        return False

    def cancel(self) -> None:
        """Cancel the whole preload: every job sees ``cancelled``."""
        self.end.request_cancel()

    def get_state(self, data_id: str) -> PreloadState:
        """What this job has reported about its own data id."""
        if data_id != self.data_id:
            raise ValueError(f"a job knows only its own state ({self.data_id!r})")
        return self._state.copy()

    def show(self) -> None:
        return None

    def notify(self, state: PreloadState) -> None:
        """Post a state change; progress-only changes are coalesced."""
        state = check_update(state, self.end.data_ids)
        data_id = state.data_id
        if state.status is None and state.message is None and state.exception is None:
            if state.progress is not None:
                if data_id == self.data_id:
                    self._state.progress = state.progress
                self._outbox.post_progress(data_id, state.progress)
            return
        if state.exception is not None and self.end.remote:
            state = state.copy()
            state.exception = pack(state.exception)
        if data_id == self.data_id:
            self._state.update(state)
        self._outbox.post(to_message(state))

    def finish(
        self,
        status: PreloadStatus,
        exception: BaseException | PackedError | None = None,
    ) -> Outcome:
        tail, sent, error = self._outbox.take(self.data_id)
        if error is not None and status is not PreloadStatus.failed:
            # A state the job reported never reached the parent: the job failed.
            status = PreloadStatus.failed
            exception = pack(error) if self.end.remote else error
        return Outcome(status.value, exception, tail, sent, tuple(self.earlier))


_loaded: tuple[bytes, JobFunction] | None = None


def _load(function: bytes | JobFunction | None) -> JobFunction:
    # A worker runs many jobs of the same function: unpickle it once.
    global _loaded
    if isinstance(function, JobFunction):
        return function
    if function is None:
        assert _process_function is not None, "no function: init_process() not called"
        function = _process_function
    if _loaded is None or _loaded[0] != function:
        _loaded = (function, pickle.loads(function))
    return _loaded[1]


# Given once to each worker of our own pool, by its initializer.
_process_end: ChannelEnd | None = None
_roster: Roster | None = None
_stops: StopFlags | None = None
_process_function: bytes | None = None


def init_process(
    end: ChannelEnd,
    roster: Roster,
    stops: StopFlags | None,
    parent_pid: int,
    function: bytes,
    parent_temp_dir: str | None = None,
) -> None:
    """Initializer of our own pool's workers: the channel end and the job
    function (with its parameters, however big) come once per worker."""
    global _process_end, _roster, _stops, _process_function
    hold_on_to(parent_pid, parent_temp_dir)
    roster.claim()
    _process_end, _roster, _stops = end, roster, stops
    _process_function = function


def run_job(job: Job, end: ChannelEnd | None = None) -> Outcome:
    """Run *job*, posting to *end* (or to the end this process was given)."""
    global _process_job
    if end is None:
        assert _process_end is not None, "no channel end: init_process() not called"
        end = _process_end
    job_function = _load(job.function)
    handle = JobHandle(end, job, _stops)
    if handle.cancelled:
        return handle.finish(PreloadStatus.cancelled)
    handle._outbox.post_started(job.data_id)
    _local.job = handle
    if end is _process_end:
        _process_job = handle
    if _roster is not None:
        _roster.job_started(job.index)
    try:
        error = _attempts(handle, job, job_function)
    finally:
        _local.job = None
        _process_job = None
        if _roster is not None:
            _roster.job_ended()
    if error is not None:
        return handle.finish(PreloadStatus.failed, error)
    if handle._saw_cancel or end.cancel_seen_outside_jobs:
        return handle.finish(PreloadStatus.cancelled)
    return handle.finish(PreloadStatus.completed)


def _attempts(
    handle: JobHandle, job: Job, job_function: JobFunction
) -> BaseException | PackedError | None:
    """Call the job's function until an attempt returns, raises what is not
    to be retried, or the run is cancelled while it waits to retry; the
    exception it ended with, if any."""
    function, params, bound, retry = job_function
    earlier = handle.earlier
    if earlier and retry is not None and not _wait_to_retry(handle, retry, earlier):
        return None
    while True:
        try:
            if bound:
                function(job.data_id, **params)
            else:
                function(handle, job.data_id, **params)
            return None
        except Exception as exc:
            if (
                retry is None
                or not retry.wants(exc, len(earlier) + 1)
                or handle.cancelled
            ):
                if retry is not None:
                    keep_earlier(exc, earlier, retry.retries + 1)
                if not handle.end.remote:
                    return exc
                return pack(exc, traceback.format_exc())
            earlier.append(describe(exc))
        if not _wait_to_retry(handle, retry, earlier):
            return None


def _wait_to_retry(handle: JobHandle, retry: Retry, earlier: list[str]) -> bool:
    """Wait before the next attempt, saying so in the job's message; False
    if the run was cancelled (or the job timed out) meanwhile."""
    number = len(earlier)
    seconds = retry.wait_before(number)
    text = waiting_message(number, retry.retries, seconds, earlier[-1])
    handle.notify(PreloadState(handle.data_id, message=text))
    if not wait_unless(seconds, lambda: handle.cancelled):
        return False
    text = f"retry {number} of {retry.retries}: {earlier[-1]}"
    handle.notify(PreloadState(handle.data_id, message=text))
    return True
