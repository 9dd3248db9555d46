"""The parent's table of job states: written by the collector, read by everyone."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .state import PreloadState, PreloadStatus


class StateTable:
    """The states of all jobs of one preload, in input order.

    Only the collector thread writes (``apply``, ``settle``); readers get
    snapshots.
    A final status never changes: later updates for that id are dropped.
    """

    def __init__(self, data_ids: Iterable[str]):
        self._states = {
            data_id: PreloadState(data_id, status=PreloadStatus.waiting)
            for data_id in data_ids
        }
        self._lock = threading.Lock()
        self._open = set(self._states)
        self._all_final = threading.Event()
        if not self._open:
            self._all_final.set()

    def __contains__(self, data_id: str) -> bool:
        return data_id in self._states

    def __len__(self) -> int:
        return len(self._states)

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
            if data_id not in self._open:
                return False
            state = self._states[data_id]
            if progress is not None:
                state.progress = progress
            if message is not None:
                state.message = message
            if exception is not None:
                state.exception = exception
            if status is None or status is state.status:
                return False
            state.status = status
            if status.is_final:
                self._open.discard(data_id)
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

    @property
    def done(self) -> bool:
        return self._all_final.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every job has ended; False on timeout."""
        return self._all_final.wait(timeout)
