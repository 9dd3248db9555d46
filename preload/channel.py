"""The channel between the jobs and the parent: a message queue and a cancel flag.

Each channel has two sides:

* the parent side (``Channel``) starts the transport, delivers every batch
  of messages to one callable (the collector's inbox), raises the cancel
  flag, and closes the transport;
* the worker side (``ChannelEnd``) is what a job's worker holds: an outbox
  for the job's messages and a cheap read of the cancel flag.

``ManagerChannel`` serves worker processes: a ``multiprocessing`` Manager
queue and Event. Its end pickles to two proxies; the parent hands it to each
worker of its own pool once, through the pool's initializer. A receiver
thread in the parent moves batches from the queue to the collector.

``ThreadChannel`` serves worker threads of the parent process: the end
delivers straight into the collector's inbox.

A channel for another transport (dask.distributed, say) implements the
same two classes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from multiprocessing.context import BaseContext
from multiprocessing.managers import SyncManager

from .errors import ChannelLostError
from .lifeline import hold_on_to, temp_dir_to_clean
from .outbox import CoalescingOutbox, DirectOutbox, Send

Lost = Callable[[Exception], None]

CANCEL_POLL = 0.005
"""Seconds a worker trusts its last read of a remote cancel flag (notice <= 10 ms)."""


class ChannelEnd(ABC):
    """The worker side of a channel."""

    remote: bool
    """True where messages and exceptions must be pickled to reach the parent."""

    def __init__(self, data_ids: frozenset[str], token: str):
        self.token = token
        self.data_ids = data_ids

    @abstractmethod
    def outbox(self) -> CoalescingOutbox | DirectOutbox:
        """The outbox this worker's jobs post their messages to."""

    @abstractmethod
    def cancel_requested(self) -> bool:
        """True once cancellation was requested."""

    @abstractmethod
    def request_cancel(self) -> None:
        """Raise the cancel flag (for a job that cancels the whole preload)."""

    cancel_seen_outside_jobs = False
    """True once a thread of this process that runs no job (a job's helper
    thread, on worker threads of the parent) saw the cancel flag raised: a
    job of this end that then returns normally ends CANCELLED."""


class Channel(ABC):
    """The parent side of a channel."""

    end: ChannelEnd

    @abstractmethod
    def start(self, deliver: Send, lost: Lost) -> None:
        """Start delivering the jobs' message batches to *deliver*; call *lost*
        if the transport breaks."""

    def cancel(self) -> None:
        """Raise the cancel flag for every job."""
        self.end.request_cancel()

    def cancel_requested(self) -> bool:
        """True once the cancel flag is raised."""
        return self.end.cancel_requested()

    @abstractmethod
    def close(self) -> None:
        """Deliver what was sent so far, then release the transport."""


class ThreadEnd(ChannelEnd):
    remote = False

    def __init__(self, data_ids: frozenset[str], token: str):
        super().__init__(data_ids, token)
        self._event = threading.Event()
        self._outbox: DirectOutbox | None = None

    def connect(self, deliver: Send) -> None:
        self._outbox = DirectOutbox(deliver)

    def outbox(self) -> DirectOutbox:
        assert self._outbox is not None, "channel not started"
        return self._outbox

    def cancel_requested(self) -> bool:
        return self._event.is_set()

    def request_cancel(self) -> None:
        self._event.set()


class ThreadChannel(Channel):
    """Jobs in threads of this process post straight to the collector."""

    def __init__(self, data_ids: frozenset[str], token: str):
        self.end = ThreadEnd(data_ids, token)

    def start(self, deliver: Send, lost: Lost) -> None:
        self.end.connect(deliver)

    def close(self) -> None:
        pass


# The outbox of the most recent channel end seen in this worker process.
# Ends sent with every job (to executors we do not own) share it.
_outbox_lock = threading.Lock()
_last_outbox: tuple[str, CoalescingOutbox] | None = None


class ManagerEnd(ChannelEnd):
    remote = True

    def __init__(
        self, data_ids: frozenset[str], token: str, queue, event, manager_pid: int
    ):
        super().__init__(data_ids, token)
        self._queue = queue
        self._event = event
        self.manager_pid = manager_pid
        self._cancelled = False
        self._next_poll = 0.0

    def lost(self, cause: BaseException) -> ChannelLostError:
        """The error for a job or a run whose Manager died."""
        return ChannelLostError(
            f"the Manager process (pid {self.manager_pid}) that carries progress"
            f" and cancellation died: {cause!r}"
        )

    def __getstate__(self) -> dict:
        return {
            "token": self.token,
            "manager_pid": self.manager_pid,
            "data_ids": self.data_ids,
            "_queue": self._queue,
            "_event": self._event,
        }

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._cancelled = False
        self._next_poll = 0.0

    def outbox(self) -> CoalescingOutbox:
        global _last_outbox
        with _outbox_lock:
            if _last_outbox is None or _last_outbox[0] != self.token:
                _last_outbox = (self.token, CoalescingOutbox(self._queue.put))
            return _last_outbox[1]

    def cancel_requested(self) -> bool:
        # A Manager Event read is a round trip (40-60 us): trust the last
        # read for CANCEL_POLL seconds, so that inner loops may ask freely.
        if self._cancelled:
            return True
        now = time.monotonic()
        if now >= self._next_poll:
            self._next_poll = now + CANCEL_POLL
            try:
                self._cancelled = self._event.is_set()
            except (EOFError, OSError) as exc:
                raise self.lost(exc) from exc
        return self._cancelled

    def request_cancel(self) -> None:
        self._event.set()
        self._cancelled = True


class ManagerChannel(Channel):
    """Jobs in other processes post through a Manager queue."""

    def __init__(self, data_ids: frozenset[str], token: str, mp_context: BaseContext):
        self._manager = SyncManager(ctx=mp_context)
        # Should this process be killed, its Manager removes its temp folder.
        self._manager.start(hold_on_to, (os.getpid(), temp_dir_to_clean()))
        self.end = ManagerEnd(
            data_ids,
            token,
            self._manager.Queue(),
            self._manager.Event(),
            self._manager._process.pid,
        )
        self._receiver: threading.Thread | None = None

    def cancel(self) -> None:
        # A dead Manager cannot carry the flag; the engine stops the jobs.
        with contextlib.suppress(EOFError, OSError):
            super().cancel()

    def cancel_requested(self) -> bool:
        try:
            return super().cancel_requested()
        except ChannelLostError:
            return False

    def start(self, deliver: Send, lost: Lost) -> None:
        self._receiver = threading.Thread(
            target=self._receive,
            args=(deliver, lost),
            name="preload-receiver",
            daemon=True,
        )
        self._receiver.start()

    def _receive(self, deliver: Send, lost: Lost) -> None:
        queue = self.end._queue
        while True:
            try:
                batch = queue.get()
            except (EOFError, OSError) as exc:
                lost(self.end.lost(exc))
                return
            if batch is None:
                return
            deliver(batch)

    def close(self) -> None:
        if self._receiver is not None:
            with contextlib.suppress(EOFError, OSError):
                self.end._queue.put(None)
            self._receiver.join()
        self._manager.shutdown()
