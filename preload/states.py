"""The parent's table of job states: written by the collector, read by everyone."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from typing import NamedTuple

from .state import STATUS_BY_VALUE, PreloadState, PreloadStatus

RECENT = 30
"""How many recently ended jobs a view of many jobs can show."""


class Row(NamedTuple):
    state: PreloadState
    elapsed: float | None
    """Seconds since the job started (until it ended), if it started."""


class View(NamedTuple):
    """A consistent picture of a run for a live display."""

    rows: list[Row]
    counts: dict[PreloadStatus, int]
    total: int
    done: int
    elapsed: float
    progress: float
    """Of the whole run: ended jobs count 1, running ones their progress."""


class StateTable:
    """The states of all jobs of one preload, in input order.

    Only the collector thread writes (``apply``, ``settle``), and after it
    has ended, the thread of a late update; readers get snapshots.
    A final status never changes: an update that would change it is dropped
    whole; later updates without a status still apply (as in xcube).
    """

    def __init__(self, data_ids: Iterable[str]):
        self._states = {
            data_id: PreloadState(data_id, status=PreloadStatus.waiting)
            for data_id in data_ids
        }
        self._lock = threading.Lock()
        self._open = set(self._states)
        # For live displays, kept as statuses change, so that a view costs in
        # proportion to the rows it shows, not to the number of ids.
        # Counted by status value: an Enum member's own hash is slow.
        self._counts = Counter({PreloadStatus.waiting.value: len(self._states)})
        self._running: dict[str, None] = {}  # an ordered set
        self._failed: dict[str, None] = {}
        self._recent: deque[str] = deque(maxlen=RECENT)
        self._started_at: dict[str, float] = {}
        self._ended_at: dict[str, float] = {}
        self.created_at = time.monotonic()
        self._all_final = threading.Event()
        if not self._open:
            self._all_final.set()

    def __contains__(self, data_id: str) -> bool:
        return data_id in self._states

    def apply(
        self,
        data_id: str,
        status: PreloadStatus | None,
        progress: float | None,
        message: str | None,
        exception: BaseException | None,
    ) -> bool:
        """Merge the given fields (None: unchanged) into the state of *data_id*.

        Returns True if its status changed.
        """
        with self._lock:
            state = self._states[data_id]
            if (
                status is not None
                and status is not state.status
                and data_id not in self._open
            ):
                return False  # an update that would change a final status
            if progress is not None:
                state.progress = progress
            if message is not None:
                state.message = message
            if exception is not None:
                state.exception = exception
            if status is None or status is state.status:
                return False
            self._counts[state.status._value_] -= 1
            self._counts[status._value_] += 1
            state.status = status
            now = time.monotonic()
            if status is PreloadStatus.started:
                self._started_at[data_id] = now
                self._running[data_id] = None
            elif status.is_final:
                self._open.discard(data_id)
                self._ended_at[data_id] = now
                self._running.pop(data_id, None)
                if status is PreloadStatus.failed:
                    self._failed[data_id] = None
                else:
                    self._recent.append(data_id)
            return True

    def settle(self) -> None:
        """Wake the waiters if every job has ended.

        The collector calls this after it has shown a change, so that a
        waiter that prints finds the last status line printed.
        """
        with self._lock:
            if not self._open:
                self._all_final.set()

    def get(self, data_id: str) -> PreloadState:
        """A snapshot of the state of *data_id*."""
        with self._lock:
            return self._states[data_id].copy()

    def snapshot(self) -> list[PreloadState]:
        """Snapshots of all states, in input order."""
        with self._lock:
            return [state.copy() for state in self._states.values()]

    def open_ids(self) -> list[str]:
        """The data ids whose jobs have not ended."""
        with self._lock:
            return [i for i in self._states if i in self._open]

    def view(self, limit: int) -> View:
        """What a live display shows: all rows if there are at most *limit*,
        else the running, the failed and the most recently ended ones."""
        with self._lock:
            if len(self._states) <= limit:
                ids = list(self._states)
            else:
                chosen = dict.fromkeys(self._running)
                chosen.update(
                    dict.fromkeys(list(self._failed)[-limit:] if limit else ())
                )
                chosen.update(dict.fromkeys(reversed(self._recent)))
                ids = list(chosen)[:limit]
            now = time.monotonic()
            rows = [Row(self._states[i].copy(), self._elapsed(i, now)) for i in ids]
            total = len(self._states)
            done = total - len(self._open)
            running = sum(self._states[i].progress or 0.0 for i in self._running)
            return View(
                rows=rows,
                counts={STATUS_BY_VALUE[v]: n for v, n in self._counts.items() if n},
                total=total,
                done=done,
                elapsed=now - self.created_at,
                progress=(done + running) / total if total else 1.0,
            )

    def _elapsed(self, data_id: str, now: float) -> float | None:
        started = self._started_at.get(data_id)
        if started is None:
            return None
        return self._ended_at.get(data_id, now) - started

    @property
    def all_final(self) -> bool:
        """True once every status is final (waiters wake at ``settle``)."""
        return not self._open

    @property
    def done(self) -> bool:
        return self._all_final.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every job has ended; False on timeout."""
        return self._all_final.wait(timeout)
