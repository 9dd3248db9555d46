"""Exceptions that carry a job's failure from a worker to the parent."""

from __future__ import annotations

import pickle


class RemoteTraceback(Exception):
    """The traceback text of an exception raised in a worker, set as its cause."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


class RemoteError(Exception):
    """Stands in for a worker's exception that could not be sent to the parent.

    Keeps the original type name, message and traceback text.
    """

    def __init__(self, type_name: str, message: str, traceback_text: str = ""):
        super().__init__(type_name, message, traceback_text)
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}"


def portable(exc: BaseException, traceback_text: str = "") -> BaseException:
    """*exc* if it survives pickling, else a ``RemoteError`` standing in for it."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RemoteError(type(exc).__qualname__, str(exc), traceback_text)
    return exc
