"""The channel between the jobs and the parent: a message queue and a cancel flag.

Each channel has two sides:

* the parent side (``Channel``) starts the transport, delivers every batch
  of messages to one callable (the collector's inbox), raises the cancel
  flag, and closes the transport;
* the worker side (``ChannelEnd``) is what a job's worker holds: an outbox
  for the job's messages and a cheap read of the cancel flag.

``PipeChannel`` serves the workers of our own pools: each worker slot of a
pool writes to a pipe of its own (one writer per pipe: a worker killed in
the middle of a write spoils only its own pipe, whose rest is dropped), and
the cancel flag is a byte of shared memory. The parent hands a pool's end to
each of its workers once, through the pool's initializer; one receiver
thread reads every pipe without blocking on any. No process of its own: it
starts in microseconds.

``ManagerChannel`` serves executors we do not own, where the end must travel
with every job: a ``multiprocessing`` Manager queue and Event, whose end
pickles to two proxies. A receiver thread in the parent moves batches from
the queue to the collector.

``ThreadChannel`` serves worker threads of the parent process: the end
delivers straight into the collector's inbox.

A channel for another transport (dask.distributed, say) implements the
same two classes.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import selectors
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext

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


def _outbox_for(token: str, send: Send) -> CoalescingOutbox:
    """This worker process's outbox for the channel *token*, made on first use
    (each job asks: no lock once it is made)."""
    global _last_outbox
    last = _last_outbox
    if last is not None and last[0] == token:
        return last[1]
    with _outbox_lock:
        if _last_outbox is None or _last_outbox[0] != token:
            _last_outbox = (token, CoalescingOutbox(send))
        return _last_outbox[1]


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
        return _outbox_for(self.token, self._queue.put)

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
        # Imported here: workers of our own pools never need it.
        from multiprocessing.managers import SyncManager

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
            except Exception as exc:  # not to end this thread unnoticed
                error = ChannelLostError(
                    f"a message batch could not be read from the Manager: {exc!r}"
                )
                error.__cause__ = exc
                lost(error)
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


_HEADER = struct.Struct("!Q")
"""A frame on a pipe: the length of the pickled batch, then the batch."""


class PipeEnd(ChannelEnd):
    """The end a worker of one of our pools holds: the pool's pipes (this
    worker writes to its slot's) and the shared cancel byte."""

    remote = True

    def __init__(
        self,
        data_ids: frozenset[str],
        token: str,
        flag,
        writers: tuple[Connection, ...] = (),
    ):
        super().__init__(data_ids, token)
        self._flag = flag
        self._writers = writers
        self._fd: int | None = None

    def for_pool(self, writers: tuple[Connection, ...]) -> PipeEnd:
        """This end, for the workers of a pool with these pipes."""
        return PipeEnd(self.data_ids, self.token, self._flag, writers)

    def use_slot(self, slot: int) -> None:
        """Write to the pipe of worker slot *slot* (in the pool initializer)."""
        self._fd = self._writers[slot].fileno()

    def __getstate__(self) -> dict:
        return {
            "token": self.token,
            "data_ids": self.data_ids,
            "_flag": self._flag,
            "_writers": self._writers,
            "_fd": None,
        }

    def outbox(self) -> CoalescingOutbox:
        return _outbox_for(self.token, self._send)

    def _send(self, batch: list) -> None:
        # Only the outbox's sender thread writes: one frame at a time.
        assert self._fd is not None, "no pipe: use_slot() not called"
        data = pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
        view = memoryview(_HEADER.pack(len(data)) + data)
        while view:
            view = view[os.write(self._fd, view) :]

    def cancel_requested(self) -> bool:
        return bool(self._flag[0])

    def request_cancel(self) -> None:
        self._flag[0] = 1


class PipeChannel(Channel):
    """Workers of our own pools post through pipes, one per worker slot."""

    def __init__(self, data_ids: frozenset[str], token: str, mp_context: BaseContext):
        self._context = mp_context
        self.end = PipeEnd(data_ids, token, mp_context.Array("b", 1, lock=False))
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._added: list[Connection] = []
        self._lock = threading.Lock()
        self._closing = False
        self._receiver: threading.Thread | None = None
        self._deliver: Send | None = None

    def end_for_pool(self, workers: int) -> PipeEnd:
        """A pipe per worker slot of a new pool, read from now on; the end
        its workers get."""
        pipes = [self._context.Pipe(duplex=False) for _ in range(workers)]
        with self._lock:
            self._added += [reader for reader, _ in pipes]
        os.write(self._wake_w, b"+")
        return self.end.for_pool(tuple(writer for _, writer in pipes))

    def retire(self, end: PipeEnd) -> None:
        """The workers of *end*'s pool have ended: close this process's copies
        of their pipes' write ends (the receiver reads on to the end)."""
        for writer in end._writers:
            writer.close()

    def start(self, deliver: Send, lost: Lost) -> None:
        self._deliver = deliver
        self._receiver = threading.Thread(
            target=self._receive, name="preload-receiver", daemon=True
        )
        self._receiver.start()

    def _receive(self) -> None:
        buffers: dict[int, tuple[Connection, bytearray]] = {}
        while True:
            ready = self._selector.select()
            for key, _ in ready:
                if key.fd == self._wake_r:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                elif not self._read(key.fd, *buffers[key.fd]):
                    self._drop(buffers.pop(key.fd)[0])
            with self._lock:
                added, self._added = self._added, []
                closing = self._closing
            for reader in added:
                os.set_blocking(reader.fileno(), False)
                buffers[reader.fileno()] = (reader, bytearray())
                self._selector.register(reader.fileno(), selectors.EVENT_READ)
            if closing:
                # Every writer has ended: what they wrote is in the pipes.
                for fd, (reader, buffer) in buffers.items():
                    self._read(fd, reader, buffer)
                    self._drop(reader)
                return

    def _read(self, fd: int, reader: Connection, buffer: bytearray) -> bool:
        """Read what is there and deliver each whole frame; False at the end
        of the pipe (a frame cut short by a killed worker is dropped)."""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return True
            if not chunk:
                return False
            buffer += chunk
            start = 0
            while len(buffer) - start >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buffer, start)
                end = start + _HEADER.size + size
                if len(buffer) < end:
                    break
                try:
                    batch = pickle.loads(buffer[start + _HEADER.size : end])
                except Exception:
                    import logging  # not for workers to import

                    logging.getLogger(__name__).exception(
                        "a message batch could not be read"
                    )
                else:
                    self._deliver(batch)
                start = end
            del buffer[:start]

    def _drop(self, reader: Connection) -> None:
        self._selector.unregister(reader.fileno())
        reader.close()

    def close(self) -> None:
        with self._lock:
            self._closing = True
        os.write(self._wake_w, b"x")
        if self._receiver is not None:
            self._receiver.join()
        else:
            for reader in self._added:
                reader.close()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
