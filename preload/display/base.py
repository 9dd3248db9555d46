"""What every display does. Only the collector thread calls a display (after
the run, a late update's thread may redraw one that updates in place)."""

from __future__ import annotations

import time

from ..state import PreloadState
from ..states import StateTable
from .insight import Insight, Sample

VIEW_ROWS = 30
"""Rows a live display shows at most; more jobs are summarised."""


class Display:
    """Shows a run. ``status_changed`` comes with each status change;
    ``refresh`` at least every ``interval`` seconds while jobs run (with
    changed=False when nothing changed); ``finish`` once, at the end."""

    interval = 0.1
    """Seconds between two redraws at most (about 10 a second)."""

    follows_statuses = False
    """True for a display that wants ``status_changed`` calls."""

    updates_in_place = False
    """True for a display that may draw again after ``finish`` (a widget)."""

    def __init__(self, table: StateTable, insight: Insight | None = None):
        self.table = table
        self._insight = insight
        self._last_draw = 0.0

    def samples(self) -> dict[str, Sample]:
        return self._insight.samples() if self._insight is not None else {}

    def status_changed(self, state: PreloadState) -> None:
        """A job's status changed."""

    def refresh(self, changed: bool) -> None:
        """Redraw if something changed, or once a second for times and insight."""
        now = time.monotonic()
        if changed or now - self._last_draw >= 1.0:
            self._last_draw = now
            self.draw()

    def draw(self) -> None:
        """Show the current view."""

    def finish(self) -> None:
        """Show the final view."""
        self.draw()
