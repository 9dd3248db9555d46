"""The abstract preload handle (xcube's API) and its null implementation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from .state import PreloadState


class PreloadHandle(ABC):
    """A handle on a running or finished preload of several data resources."""

    @abstractmethod
    def get_state(self, data_id: str) -> PreloadState:
        """The state of the job for *data_id*."""

    @property
    @abstractmethod
    def cancelled(self) -> bool:
        """True once the preload has been cancelled."""

    @abstractmethod
    def cancel(self) -> None:
        """Ask the preload to stop."""

    @abstractmethod
    def show(self) -> Any:
        """Show the state of the preload."""

    def close(self) -> None:
        """Release what the preload holds. Does nothing here."""

    def notify(self, state: PreloadState) -> None:
        """Report a (partial) state change of one job. Does nothing here."""

    def __enter__(self) -> PreloadHandle:
        return self

    def __exit__(self, exc_type, exc_val, exc_tb) -> None:
        self.close()


class NullPreloadHandle(PreloadHandle):
    """A handle that knows nothing and does nothing."""

    def get_state(self, data_id: str) -> PreloadState:
        return PreloadState(data_id)

    @property
    def cancelled(self) -> bool:
        return False

    def cancel(self) -> None:
        pass

    def show(self) -> Any:
        return None
