"""Quiet output for logs: a line per status change, a summary now and then,
the final table once. No control codes."""

from __future__ import annotations

import time
from typing import TextIO

from ..errors import describe
from ..state import PreloadState
from ..states import StateTable
from .base import VIEW_ROWS, Display
from .table import format_table, printable, summary

SUMMARY_EVERY = 10.0
"""Seconds between two summary lines while jobs run."""


_clock_cache: tuple[int, str] = (0, "")


def _clock() -> str:
    """The wall clock as HH:MM:SS, formatted once a second at most."""
    global _clock_cache
    now = int(time.time())
    if _clock_cache[0] != now:
        _clock_cache = (now, time.strftime("%H:%M:%S", time.localtime(now)))
    return _clock_cache[1]


class LogDisplay(Display):
    follows_statuses = True

    def __init__(self, table: StateTable, stream: TextIO, final_table: bool = True):
        super().__init__(table)
        self._stream = stream
        self._final_table = final_table
        self._next_summary = time.monotonic() + SUMMARY_EVERY
        self._unflushed = False

    def _write(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def status_changed(self, state: PreloadState) -> None:
        line = f"{_clock()} {printable(state.data_id)} {state.status}"
        if state.exception is not None:
            line += f": {printable(describe(state.exception))}"
        # Flushed by the next refresh, within `interval`: one system call for
        # many lines when thousands of jobs end at once.
        self._stream.write(line + "\n")
        self._unflushed = True

    def refresh(self, changed: bool) -> None:
        if self._unflushed:
            self._unflushed = False
            self._stream.flush()
        now = time.monotonic()
        if now >= self._next_summary and not self.table.done:
            self._next_summary = now + SUMMARY_EVERY
            self._write(f"{_clock()} {summary(self.table.view(0))}")

    def finish(self) -> None:
        self._stream.flush()
        if self._final_table:
            view = self.table.view(VIEW_ROWS)
            self._write(format_table([row.state for row in view.rows]))
            self._write(summary(view))
