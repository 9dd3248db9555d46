"""How a run is shown: a live table in a terminal, quiet lines in a log, a
panel in a notebook. Only the collector thread draws; workers never write
to the parent's output."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ..states import StateTable
from .base import Display
from .insight import Insight
from .log import LogDisplay
from .notebook import NotebookDisplay, in_notebook
from .table import format_table
from .terminal import TerminalDisplay

MODES = ("terminal", "log", "notebook")

__all__ = ["MODES", "Display", "choose_display", "format_table", "in_notebook"]


def detect_mode() -> str:
    """The display for where we run: notebook, terminal (a TTY) or log."""
    if in_notebook():
        return "notebook"
    isatty = getattr(sys.stdout, "isatty", None)
    return "terminal" if isatty is not None and isatty() else "log"


def choose_display(
    mode: str,
    table: StateTable,
    blocking: bool,
    running: Callable[[], dict[str, int]] | None,
    on_cancel: Callable[[], None],
) -> Display:
    """The display of *mode* for a run. A non-blocking run in a terminal gets
    status lines: a table redrawn in place would garble the caller's output."""
    insight = Insight(running) if running is not None else None
    if mode == "notebook":
        return NotebookDisplay(table, on_cancel, insight)
    if mode == "terminal" and blocking:
        return TerminalDisplay(table, sys.stdout, insight)
    return LogDisplay(table, sys.stdout, final_table=blocking)
