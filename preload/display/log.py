"""Quiet output for logs: a line per status change, a summary now and then,
the final table once. No control codes."""

from __future__ import annotations

import time
from typing import TextIO

from ..state import PreloadState
from ..states import StateTable
from .base import VIEW_ROWS, Display
from .table import format_table, summary

SUMMARY_EVERY = 10.0
"""Seconds between two summary lines while jobs run."""


class LogDisplay(Display):
    def __init__(self, table: StateTable, stream: TextIO, final_table: bool = True):
        super().__init__(table)
        self._stream = stream
        self._final_table = final_table
        self._next_summary = time.monotonic() + SUMMARY_EVERY

    def _write(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def status_changed(self, state: PreloadState) -> None:
        line = f"{time.strftime('%H:%M:%S')} {state.data_id} {state.status}"
        if state.exception is not None:
            line += f": {type(state.exception).__name__}: {state.exception}"
        self._write(line)

    def refresh(self, changed: bool) -> None:
        now = time.monotonic()
        if now >= self._next_summary and not self.table.done:
            self._next_summary = now + SUMMARY_EVERY
            self._write(f"{time.strftime('%H:%M:%S')} {summary(self.table.view(0))}")

    def finish(self) -> None:
        if self._final_table:
            view = self.table.view(VIEW_ROWS)
            self._write(format_table([row.state for row in view.rows]))
            self._write(summary(view))
