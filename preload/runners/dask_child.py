"""A job's own process on a dask worker: runs one job, talks to its task by pipes.

The dask task that supervises the job (``dask_worker.py``) starts this module
as a fresh interpreter in a session of its own (``python -m
preload.runners.dask_child CONTROL FRAMES``), with two pipes:

* *control*, task to job: first the job (one frame: the task's ``sys.path``,
  the ``Job``, the ``DaskEnd``), then a byte ``c`` whenever the job must see
  ``cancelled`` (the run was cancelled, or its timeout passed). End of file
  means the task's worker is gone: the job's process group is killed at once,
  so a SIGKILLed worker leaves nothing behind;
* *frames*, job to task: message batches (``m``), a request to cancel the
  whole run (``c``), and the job's ``Outcome`` last (``o``).

Nothing here imports dask.distributed (it costs ~0.7 s a process).
"""

from __future__ import annotations

import os
import pickle
import signal
import struct
import sys
import threading
import traceback

from ..channel import ChannelEnd
from ..outbox import CoalescingOutbox
from ..state import Message

HEADER = struct.Struct(">cI")
"""A frame: its kind (one byte) and the length of its payload."""

MESSAGES, RUN_CANCEL, OUTCOME = b"m", b"c", b"o"
STOP = b"c"
"""The byte the task writes on *control*: the job sees ``cancelled``."""


def write_frame(fd: int, kind: bytes, payload: bytes = b"") -> None:
    """Write one whole frame to *fd*."""
    data = memoryview(HEADER.pack(kind, len(payload)) + payload)
    while data:
        data = data[os.write(fd, data) :]


def read_exact(fd: int, size: int) -> bytes:
    """*size* bytes from *fd*; EOFError if it ends first."""
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the pipe closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def split_frames(buffer: bytearray) -> list[tuple[bytes, bytes]]:
    """Take the whole frames off the front of *buffer*."""
    frames = []
    while len(buffer) >= HEADER.size:
        kind, size = HEADER.unpack_from(buffer)
        end = HEADER.size + size
        if len(buffer) < end:
            break
        frames.append((kind, bytes(buffer[HEADER.size : end])))
        del buffer[:end]
    return frames


class DaskEnd(ChannelEnd):
    """The worker side of the dask channel, as a job's own process holds it.

    Message batches go up the *frames* pipe (the task logs each as a dask
    event); the cancel flag is a local ``threading.Event`` that the task's
    ``c`` on *control* raises, so ``handle.cancelled`` is a local read."""

    remote = True

    def __init__(self, data_ids: frozenset[str], token: str):
        super().__init__(data_ids, token)
        self._flag = threading.Event()
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._outbox: CoalescingOutbox | None = None

    def __getstate__(self) -> dict:
        return {"token": self.token, "data_ids": self.data_ids}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["data_ids"], state["token"])

    def attach(self, fd: int) -> None:
        """Send this process's frames to *fd*."""
        self._fd = fd
        self._outbox = CoalescingOutbox(self._send)

    def _send(self, batch: list[Message]) -> None:
        payload = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
        self._write(MESSAGES, payload)

    def _write(self, kind: bytes, payload: bytes = b"") -> None:
        assert self._fd is not None, "not attached to a task"
        with self._lock:
            write_frame(self._fd, kind, payload)

    def outbox(self) -> CoalescingOutbox:
        assert self._outbox is not None, "not attached to a task"
        return self._outbox

    def cancel_requested(self) -> bool:
        return self._flag.is_set()

    def request_cancel(self) -> None:
        if not self._flag.is_set():
            self._flag.set()
            if self._fd is not None:
                self._write(RUN_CANCEL)

    def stop(self) -> None:
        """This job must see ``cancelled`` (its task said so)."""
        self._flag.set()


def _watch_task(control: int, end: DaskEnd) -> None:
    while True:
        try:
            byte = os.read(control, 1)
        except OSError:
            byte = b""
        if not byte:
            # The task (its worker) is gone: so is this job, and all it started.
            os.killpg(os.getpgrp(), signal.SIGKILL)
        end.stop()


def main(control: int, frames: int) -> None:
    from ..errors import pack
    from ..state import PreloadStatus
    from ..worker import Outcome, run_job

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    size = HEADER.unpack(read_exact(control, HEADER.size))[1]
    path, job, end = pickle.loads(read_exact(control, size))
    sys.path[:0] = [p for p in path if p not in sys.path]
    end.attach(frames)
    threading.Thread(
        target=_watch_task, args=(control, end), name="preload-task-watch", daemon=True
    ).start()
    try:
        outcome = run_job(job, end)
    except BaseException as exc:  # SystemExit, KeyboardInterrupt: the job's end
        tail, sent, _ = end.outbox().take(job.data_id)
        packed = pack(exc, traceback.format_exc())
        outcome = Outcome(PreloadStatus.failed.value, packed, tail, sent)
    end._write(OUTCOME, pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.flush()
    sys.stderr.flush()
    # The job is over: threads it left behind do not keep its process.
    os._exit(0)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
