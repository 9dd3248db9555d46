"""Exceptions that carry a job's failure from a worker to the parent."""

from __future__ import annotations

import pickle
import signal
from typing import NamedTuple


class RemoteTraceback(Exception):
    """The traceback text of an exception raised in a worker, set as its cause."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


class RemoteError(Exception):
    """Stands in for a worker's exception that could not reach the parent.

    Keeps the original type name, message and traceback text.
    """

    def __init__(self, type_name: str, message: str, traceback_text: str = ""):
        super().__init__(type_name, message, traceback_text)
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}"


class PackedError(NamedTuple):
    """An exception on its way to the parent: cloudpickled (its class may be
    defined in a notebook or ``__main__``), with what a stand-in needs."""

    data: bytes | None
    type_name: str
    message: str
    traceback_text: str


def pack(exc: BaseException, traceback_text: str = "") -> PackedError:
    """*exc* in a form that plain pickle carries from any worker."""
    # Imported here, once a job fails: ~11 ms a worker's start need not pay.
    import cloudpickle

    try:
        data = cloudpickle.dumps(exc)
    except Exception:
        data = None
    return PackedError(data, type(exc).__qualname__, str(exc), traceback_text)


def unpack(packed: PackedError) -> BaseException:
    """The exception *packed* stands for, or a ``RemoteError`` in its place."""
    if packed.data is not None:
        try:
            exc = pickle.loads(packed.data)
        except Exception:
            pass
        else:
            if packed.traceback_text:
                exc.__cause__ = RemoteTraceback(packed.traceback_text)
            return exc
    return RemoteError(packed.type_name, packed.message, packed.traceback_text)


def describe(exc: BaseException) -> str:
    """'ValueError: cannot convert x': an exception as users read it."""
    return f"{type(exc).__name__}: {exc}"


class WorkerDiedError(RuntimeError):
    """The worker process that ran a job died (os._exit, a signal, a crash)."""


class ChannelLostError(RuntimeError):
    """The channel between the jobs and the parent broke (its Manager died)."""


def describe_exit(pid: int, exitcode: int) -> str:
    """'worker process 12 was killed by SIGKILL' or '... exited with code 3'."""
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"worker process {pid} was killed by {name}"
    return f"worker process {pid} exited with code {exitcode}"


class ResultLostError(RuntimeError):
    """A job ended in its worker, but its result never reached the parent (it
    could not be unpickled, or the worker broke its pool after the job)."""
