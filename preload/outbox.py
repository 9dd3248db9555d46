"""Worker side of the channel: how a job's messages leave the worker.

A job posts three kinds of messages. Its ``started`` status; progress-only
updates, frequent, of which only the newest matters, so they are coalesced;
everything else (status, message or exception changes) is urgent and keeps
its order.

``CoalescingOutbox`` serves worker processes, where a send through a Manager
queue costs ~100 us: a background sender thread ships urgent messages at
once and pending progress at most every ``PROGRESS_INTERVAL`` seconds, in
batches. A job's calling thread never waits on the channel, except for an
in-flight batch when it ends.

``DirectOutbox`` serves worker threads in the parent, where a send is a
cheap in-process queue put.

Both count the messages they sent per data id. When a job ends, ``take()``
returns what was not sent yet (it travels with the job's outcome), how many
were sent, so the collector can apply every message before the final
status, and the error of a send that failed, if one did (the job then fails:
the collector must not wait for a message that never comes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .errors import describe
from .state import Message

Send = Callable[[list[Message]], None]

PROGRESS_INTERVAL = 0.05
"""Seconds between two sends of progress-only updates (about 20 per second)."""

TICK = 0.005
"""Seconds between two looks of a sender thread for deferred messages."""

START_DELAY = 0.005
"""Seconds a ``started`` status waits, so that short jobs need no send for it."""

IDLE_EXIT = 1.0
"""Seconds a sender thread waits for work before it ends."""

STARTED = "started"


class DirectOutbox:
    """Sends every message at once, in the calling thread."""

    def __init__(self, send: Send):
        self._send = send

    def post(self, message: Message) -> None:
        self._send([message])

    def post_started(self, data_id: str) -> None:
        self._send([(data_id, STARTED, None, None, None)])

    def post_progress(self, data_id: str, progress: float) -> None:
        self._send([(data_id, None, progress, None, None)])

    def take(self, data_id: str) -> tuple[list[Message], int, Exception | None]:
        # Messages went into the same FIFO as the outcome will: nothing to wait
        # for; a send that failed raised in the job.
        return [], 0, None


class CoalescingOutbox:
    """Coalesces progress and sends batches from a background thread.

    The thread ticks every ``TICK`` seconds while there is work, so that
    deferred messages need no wake-up, and ends after ``IDLE_EXIT`` idle
    seconds. A job's ``started`` is deferred by ``START_DELAY``: a job that
    ends sooner carries it in its outcome instead of a send of its own.
    """

    def __init__(self, send: Send):
        self._send = send
        self._cond = threading.Condition()
        self._urgent: list[Message] = []
        self._started: dict[str, float] = {}
        self._progress: dict[str, float] = {}
        self._progress_armed = False
        self._next_progress = 0.0
        self._sent: dict[str, int] = {}
        self._error: Exception | None = None
        self._sending = False
        self._thread: threading.Thread | None = None

    def post(self, message: Message) -> None:
        """Queue an urgent message; it carries the pending progress of its id."""
        data_id = message[0]
        with self._cond:
            self._flush_started(data_id)
            progress = self._progress.pop(data_id, None)
            if progress is not None and message[2] is None:
                message = (data_id, message[1], progress, message[3], message[4])
            self._urgent.append(message)
            if self._thread is None:
                self._start_thread()
            else:
                self._cond.notify()

    def post_started(self, data_id: str) -> None:
        """Queue the ``started`` status of *data_id*, deferred by START_DELAY."""
        with self._cond:
            self._started[data_id] = time.monotonic() + START_DELAY
            if self._thread is None:
                self._start_thread()

    def post_progress(self, data_id: str, progress: float) -> None:
        """Record the newest progress of *data_id* (the hot path: no lock)."""
        self._progress[data_id] = progress
        if not self._progress_armed:
            with self._cond:
                self._progress_armed = True
                if self._thread is None:
                    self._start_thread()

    def take(self, data_id: str) -> tuple[list[Message], int, Exception | None]:
        """Remove and return the unsent messages of *data_id*, the sent count,
        and the first send error since the last ``take()``.

        Waits for a batch in flight, so that every counted message is in the
        channel when this returns. A worker runs one job at a time: a send
        error is its job's.
        """
        with self._cond:
            while self._sending:
                self._cond.wait()
            self._flush_started(data_id)
            tail = [m for m in self._urgent if m[0] == data_id]
            if tail:
                self._urgent = [m for m in self._urgent if m[0] != data_id]
            progress = self._progress.pop(data_id, None)
            if progress is not None:
                tail.append((data_id, None, progress, None, None))
            error, self._error = self._error, None
            return tail, self._sent.pop(data_id, 0), error

    def _flush_started(self, data_id: str) -> None:
        # Called with the lock held: a deferred `started` goes before the
        # other messages of its id.
        if self._started.pop(data_id, None) is not None:
            self._urgent.append((data_id, STARTED, None, None, None))

    def _start_thread(self) -> None:
        # Called with the lock held.
        self._thread = threading.Thread(
            target=self._run, name="preload-outbox", daemon=True
        )
        self._thread.start()

    def _next_batch(self) -> list[Message]:
        # Called with the lock held.
        now = time.monotonic()
        for data_id, due in list(self._started.items()):
            if due <= now:
                self._flush_started(data_id)
        if self._progress_armed and now >= self._next_progress:
            # Disarm before popping: a post_progress() racing with us then
            # either lands in this batch or arms the next one.
            self._progress_armed = False
            while self._progress:
                data_id, progress = self._progress.popitem()
                self._flush_started(data_id)
                self._urgent.append((data_id, None, progress, None, None))
            self._next_progress = now + PROGRESS_INTERVAL
        batch, self._urgent = self._urgent, []
        for message in batch:
            self._sent[message[0]] = self._sent.get(message[0], 0) + 1
        return batch

    def _deliver(self, batch: list[Message]) -> list[tuple[Message, Exception]]:
        """Send *batch*; if that fails, each message alone. The messages that
        could not be sent, each with its error."""
        try:
            self._send(batch)
            return []
        except Exception as exc:
            if len(batch) == 1:
                return [(batch[0], _send_error(batch[0], exc))]
        failed = []
        for message in batch:
            try:
                self._send([message])
            except Exception as exc:
                failed.append((message, _send_error(message, exc)))
        return failed

    def _run(self) -> None:
        with self._cond:
            idle_since = time.monotonic()
            while True:
                batch = self._next_batch()
                if batch:
                    self._sending = True
                    self._cond.release()
                    try:
                        failed = self._deliver(batch)
                    finally:
                        self._cond.acquire()
                        self._sending = False
                        self._cond.notify_all()
                    for message, error in failed:
                        self._sent[message[0]] -= 1
                        if self._error is None:
                            self._error = error
                if batch or self._started or self._progress_armed:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > IDLE_EXIT:
                    self._thread = None
                    return
                self._cond.wait(TICK)


def _send_error(message: Message, cause: Exception) -> RuntimeError:
    # Whatever failed (a value that cannot be pickled, a Manager that is
    # gone), say which report it was.
    error = RuntimeError(
        f"a state reported for {message[0]!r} could not be sent to the parent:"
        f" {describe(cause)}"
    )
    error.__cause__ = cause
    return error
