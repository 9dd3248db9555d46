"""A job's progress over weighted phases, and its cancellation points."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..handle import PreloadHandle
from ..state import PreloadState


class Cancelled(Exception):
    """Raised at a cancellation point once the job's handle is cancelled."""


def share(
    advance: Callable[[float], None], start: float, size: float, total: float
) -> Callable[[float], None]:
    """*advance* for a part of *size* at *start* of a whole of *total*:
    its fraction ``f`` of the part is ``(start + f * size) / total`` of the whole."""
    return lambda fraction: advance((start + fraction * size) / total)


class Progress:
    """Posts one job's overall progress as it moves through weighted phases.

    Each phase has a weight (its share of the whole job, e.g. bytes times a cost
    per byte). ``advance(fraction)`` reports how far the current phase is and is
    also a cancellation point: it raises ``Cancelled`` once the handle is
    cancelled. Progress never goes back.
    """

    def __init__(
        self, handle: PreloadHandle, data_id: str, weights: Mapping[str, float]
    ):
        self._handle = handle
        self._data_id = data_id
        self._weights = dict(weights)
        self._total = sum(self._weights.values()) or 1.0
        self._before = 0.0  # the weight of the phases already done
        self._phase: str | None = None
        self._reported = 0.0

    def phase(self, name: str, message: str) -> None:
        """Start phase *name* (ending the current one), saying *message*."""
        if self._phase is not None:
            self._before += self._weights[self._phase]
        self._phase = name
        self._post(self._before / self._total, message)

    def say(self, message: str) -> None:
        """Post *message* (what the current phase is doing now)."""
        self._post(self._reported, message)

    def advance(self, fraction: float) -> None:
        """The current phase is *fraction* done; raises ``Cancelled`` if cancelled."""
        if self._handle.cancelled:
            raise Cancelled
        assert self._phase is not None, "advance() before phase()"
        weight = self._weights[self._phase] * min(max(fraction, 0.0), 1.0)
        self._post((self._before + weight) / self._total)

    def _post(self, progress: float, message: str | None = None) -> None:
        progress = max(progress, self._reported)
        if progress == self._reported and message is None:
            return
        self._reported = progress
        self._handle.notify(
            PreloadState(self._data_id, progress=progress, message=message)
        )
