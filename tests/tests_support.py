"""Helpers for tests that run in the test process only."""

from __future__ import annotations

import subprocess
import sys
import threading


def preload(*args: str, timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    """Run the `preload` command as a user does; its output as text."""
    return subprocess.run(
        [sys.executable, "-m", "preload.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


class Recorder:
    """A send function that records batches; optionally blocks on the first."""

    def __init__(self, block: bool = False):
        self._batches: list[list] = []
        self._cond = threading.Condition()
        self._block = block
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, batch: list) -> None:
        if self._block and not self.entered.is_set():
            self.entered.set()
            self.release.wait(5)
        with self._cond:
            self._batches.append(list(batch))
            self._cond.notify_all()

    def messages(self) -> list:
        with self._cond:
            return [m for batch in self._batches for m in batch]

    def count_for(self, data_id: str) -> int:
        return sum(1 for m in self.messages() if m[0] == data_id)

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: sum(len(b) for b in self._batches) >= count, timeout
            )
