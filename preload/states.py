"""The parent's table of job states: written by the collector, read by everyone."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from .state import PreloadState, PreloadStatus


class StateTable:
    """The states of all jobs of one preload, in input order.

    Only the collector thread writes (``apply``); readers get snapshots.
    A final status never changes: later updates for that id are dropped.
    """

    def __init__(self, data_ids: Iterable[str]):
        self._states = {
            data_id: PreloadState(data_id, status=PreloadStatus.waiting)
            for data_id in data_ids
        }
        self._lock = threading.Lock()
        self._open = len(self._states)
        self._all_final = threading.Event()
        if not self._open:
            self._all_final.set()

    def __contains__(self, data_id: str) -> bool:
        return data_id in self._states

    def __len__(self) -> int:
        return len(self._states)

    def apply(self, update: PreloadState) -> bool:
        """Merge *update* into its job's state; True if the status changed."""
        with self._lock:
            state = self._states[update.data_id]
            if state.status.is_final:
                return False
            old_status = state.status
            state.update(update)
            if state.status.is_final:
                self._open -= 1
                if not self._open:
                    self._all_final.set()
            return state.status is not old_status

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
            return [i for i, s in self._states.items() if not s.status.is_final]

    @property
    def done(self) -> bool:
        return self._all_final.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every job has ended; False on timeout."""
        return self._all_final.wait(timeout)
