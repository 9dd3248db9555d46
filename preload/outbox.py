"""Worker side of the channel: how a job's messages leave the worker.

A job posts two kinds of messages. Progress-only updates are frequent and
only the newest matters, so they are coalesced. Everything else (status,
message or exception changes) is urgent and keeps its order.

``CoalescingOutbox`` serves worker processes, where a send through a Manager
queue costs ~100 us: a background sender thread ships urgent messages at
once and pending progress at most every ``PROGRESS_INTERVAL`` seconds, in
batches. A job's calling thread never waits on the channel, except for an
in-flight batch when it ends.

``DirectOutbox`` serves worker threads in the parent, where a send is a
cheap in-process queue put.

Both count the messages they sent per data id. When a job ends, ``take()``
returns what was not sent yet (it travels with the job's outcome) and how
many were sent, so the collector can apply every message before the final
status.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .state import Message

Send = Callable[[list[Message]], None]

PROGRESS_INTERVAL = 0.05
"""Seconds between two sends of progress-only updates (about 20 per second)."""

IDLE_EXIT = 1.0
"""Seconds a sender thread waits for work before it ends."""


class DirectOutbox:
    """Sends every message at once, in the calling thread."""

    def __init__(self, send: Send):
        self._send = send

    def post(self, message: Message) -> None:
        self._send([message])

    def post_progress(self, data_id: str, progress: float) -> None:
        self._send([(data_id, None, progress, None, None)])

    def take(self, data_id: str) -> tuple[list[Message], int]:
        # Messages went into the same FIFO as the outcome will: nothing to wait for.
        return [], 0


class CoalescingOutbox:
    """Coalesces progress and sends batches from a background thread."""

    def __init__(self, send: Send):
        self._send = send
        self._cond = threading.Condition()
        self._urgent: list[Message] = []
        self._progress: dict[str, float] = {}
        self._progress_armed = False
        self._next_progress = 0.0
        self._sent: dict[str, int] = {}
        self._sending = False
        self._thread: threading.Thread | None = None

    def post(self, message: Message) -> None:
        """Queue an urgent message; it carries the pending progress of its id."""
        data_id = message[0]
        with self._cond:
            progress = self._progress.pop(data_id, None)
            if progress is not None and message[2] is None:
                message = (data_id, message[1], progress, message[3], message[4])
            self._urgent.append(message)
            self._wake()

    def post_progress(self, data_id: str, progress: float) -> None:
        """Record the newest progress of *data_id* (the hot path: no lock)."""
        self._progress[data_id] = progress
        if not self._progress_armed:
            with self._cond:
                self._progress_armed = True
                self._wake()

    def take(self, data_id: str) -> tuple[list[Message], int]:
        """Remove and return the unsent messages of *data_id*, and the sent count.

        Waits for a batch in flight, so that every counted message is in the
        channel when this returns.
        """
        with self._cond:
            while self._sending:
                self._cond.wait()
            tail = [m for m in self._urgent if m[0] == data_id]
            if tail:
                self._urgent = [m for m in self._urgent if m[0] != data_id]
            progress = self._progress.pop(data_id, None)
            if progress is not None:
                tail.append((data_id, None, progress, None, None))
            return tail, self._sent.pop(data_id, 0)

    def _wake(self) -> None:
        # Called with the lock held.
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="preload-outbox", daemon=True
            )
            self._thread.start()
        else:
            self._cond.notify()

    def _next_batch(self) -> list[Message]:
        # Called with the lock held.
        batch, self._urgent = self._urgent, []
        if self._progress_armed and time.monotonic() >= self._next_progress:
            # Disarm before popping: a post_progress() racing with us then
            # either lands in this batch or arms the next one.
            self._progress_armed = False
            while self._progress:
                data_id, progress = self._progress.popitem()
                batch.append((data_id, None, progress, None, None))
            self._next_progress = time.monotonic() + PROGRESS_INTERVAL
        for message in batch:
            self._sent[message[0]] = self._sent.get(message[0], 0) + 1
        return batch

    def _run(self) -> None:
        with self._cond:
            while True:
                batch = self._next_batch()
                if batch:
                    self._sending = True
                    self._cond.release()
                    try:
                        self._send(batch)
                    except Exception:
                        # The parent side is gone (closed, or its Manager died):
                        # nobody is left to read these messages.
                        pass
                    finally:
                        self._cond.acquire()
                        self._sending = False
                        self._cond.notify_all()
                    continue
                if self._progress_armed:
                    self._cond.wait(max(0.0, self._next_progress - time.monotonic()))
                elif not self._cond.wait(IDLE_EXIT) and not (
                    self._urgent or self._progress_armed
                ):
                    self._thread = None
                    return
