"""What is known about one preload job: its status, progress, message and exception."""

from __future__ import annotations

from collections.abc import Container
from enum import Enum
from numbers import Real


class PreloadStatus(Enum):
    """The status of one preload job."""

    waiting = "waiting"
    started = "started"
    completed = "completed"
    cancelled = "cancelled"
    failed = "failed"

    def __str__(self) -> str:
        return self.name.upper()

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    @property
    def is_final(self) -> bool:
        """True for the statuses a job ends with."""
        # By value: an Enum member's own hash is computed in Python, slowly.
        return self._value_ in _FINAL_VALUES


_FINAL_VALUES = frozenset(("completed", "cancelled", "failed"))

_FIELDS = ("data_id", "status", "progress", "message", "exception")


class PreloadState:
    """A full or partial state of the preload job for one data id.

    Fields that are ``None`` are unknown (in a full state) or unchanged
    (in a partial state passed to ``notify()``).
    """

    __slots__ = _FIELDS

    def __init__(
        self,
        data_id: str,
        status: PreloadStatus | None = None,
        progress: float | None = None,
        message: str | None = None,
        exception: BaseException | None = None,
    ):
        if not isinstance(data_id, str) or not data_id:
            raise ValueError(f"data_id must be a non-empty str, got {data_id!r}")
        self.data_id = data_id
        self.status = status
        self.progress = progress
        self.message = message
        self.exception = exception

    def update(self, other: PreloadState) -> None:
        """Merge the fields of *other* that are not ``None`` into this state."""
        if not isinstance(other, PreloadState):
            raise TypeError(f"expected a PreloadState, got {type(other).__name__}")
        if other.data_id != self.data_id:
            raise ValueError(
                f"cannot update the state of {self.data_id!r}"
                f" with a state of {other.data_id!r}"
            )
        for name in _FIELDS[1:]:
            value = getattr(other, name)
            if value is not None:
                setattr(self, name, value)

    def copy(self) -> PreloadState:
        """A snapshot of this state."""
        return PreloadState(*self._values())

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in _FIELDS)

    def _known(self) -> dict:
        return {
            n: v for n, v in zip(_FIELDS, self._values(), strict=True) if v is not None
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PreloadState):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None

    def __reduce__(self):
        return PreloadState, self._values()

    def __str__(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self._known().items())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._known().items())
        return f"{type(self).__name__}({args})"


Message = tuple
"""A state change on its way from a job to the parent: the fields of a
``PreloadState`` as a plain tuple, the status as its value (cheap to pickle)."""


def to_message(state: PreloadState) -> Message:
    """The wire form of *state*: plain values, which any process can unpickle
    (a str subclass becomes a str)."""
    status = state.status.value if state.status is not None else None
    data_id, message = state.data_id, state.message
    if type(data_id) is not str:
        data_id = str.__str__(data_id)
    if message is not None and type(message) is not str:
        message = str.__str__(message)
    return (data_id, status, state.progress, message, state.exception)


STATUS_BY_VALUE = {status.value: status for status in PreloadStatus}
"""The status of a wire message's status value (faster than ``PreloadStatus(v)``)."""


PROGRESS_SLACK = 1e-9
"""How far outside [0, 1] a progress may stray by rounding (0.34 + 0.56 + 0.1
is 1.0000000000000002); it is clamped."""


def check_update(state: PreloadState, data_ids: Container[str]) -> PreloadState:
    """*state* as a valid update for one of *data_ids*: TypeError for a field of
    the wrong type, ValueError for a wrong value. Returns *state*, or a copy
    whose progress is made a float within [0, 1]."""
    if not isinstance(state, PreloadState):
        raise TypeError(f"expected a PreloadState, got {type(state).__name__}")
    if state.data_id not in data_ids:
        raise ValueError(f"{state.data_id!r} is not a data id of this preload")
    if state.status is not None and not isinstance(state.status, PreloadStatus):
        raise TypeError(f"status must be a PreloadStatus, got {state.status!r}")
    if state.message is not None and not isinstance(state.message, str):
        raise TypeError(f"message must be a str or None, got {state.message!r}")
    if state.exception is not None and not isinstance(state.exception, BaseException):
        raise TypeError(
            f"exception must be an exception or None, got {state.exception!r}"
        )
    progress = state.progress
    if progress is None:
        return state
    if type(progress) is float:
        if 0.0 <= progress <= 1.0:
            return state
    elif isinstance(progress, bool) or not isinstance(progress, Real):
        raise TypeError(f"progress must be a number, got {progress!r}")
    if not -PROGRESS_SLACK <= progress <= 1.0 + PROGRESS_SLACK:
        raise ValueError(f"progress must be in [0, 1], got {progress!r}")
    state = state.copy()
    state.progress = min(1.0, max(0.0, float(progress)))
    return state
