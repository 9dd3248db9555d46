"""A live table redrawn in place in a terminal, with ANSI control codes."""

from __future__ import annotations

import shutil
from typing import TextIO

from ..states import StateTable
from .base import VIEW_ROWS, Display
from .insight import Insight
from .table import live_text

UP_AND_CLEAR = "\x1b[{n}F\x1b[J"
"""Cursor up *n* lines to their start, then clear to the end of the screen."""


class TerminalDisplay(Display):
    """Redraws the table in place; the final table stays on screen once."""

    def __init__(
        self, table: StateTable, stream: TextIO, insight: Insight | None = None
    ):
        super().__init__(table, insight)
        self._stream = stream
        self._lines = 0

    def draw(self) -> None:
        width = shutil.get_terminal_size().columns
        lines = live_text(self.table.view(VIEW_ROWS), self.samples(), width)
        text = UP_AND_CLEAR.format(n=self._lines) if self._lines else ""
        self._stream.write(text + "\n".join(lines) + "\n")
        self._stream.flush()
        self._lines = len(lines)
