"""The notebook display: an ipywidgets panel that updates in place.

A ``VBox`` holding the live table (HTML, a progress bar per row), an
overall progress bar, a summary and a Cancel button. Without ipywidgets, an
HTML table updated through an IPython display handle.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..states import StateTable
from .base import VIEW_ROWS, Display
from .insight import Insight
from .table import live_html, summary


def in_notebook() -> bool:
    """True inside a Jupyter kernel."""
    # A kernel has imported IPython long before; importing it here (~0.4 s)
    # would only slow down scripts.
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    return type(ipython.get_ipython()).__name__ == "ZMQInteractiveShell"


class NotebookDisplay(Display):
    updates_in_place = True

    def __init__(
        self,
        table: StateTable,
        on_cancel: Callable[[], None],
        insight: Insight | None = None,
    ):
        super().__init__(table, insight)
        self._handle = None
        try:
            import ipywidgets as widgets
        except ImportError:
            self.widget = None
            return
        self._html = widgets.HTML()
        self._bar = widgets.FloatProgress(min=0.0, max=1.0, description="Overall")
        self._summary = widgets.Label()
        self._button = widgets.Button(description="Cancel", icon="stop")
        self._button.on_click(lambda _: on_cancel())
        self.widget: Any = widgets.VBox(
            [self._html, widgets.HBox([self._bar, self._button]), self._summary]
        )
        self.draw()

    def show(self) -> None:
        """Display the live panel in the current cell."""
        from IPython.display import HTML, display

        if self.widget is not None:
            display(self.widget)
        else:
            self._handle = display(
                HTML(live_html(self.table.view(VIEW_ROWS), {})), display_id=True
            )

    def draw(self) -> None:
        view = self.table.view(VIEW_ROWS)
        table = live_html(view, self.samples())
        if self.widget is None:
            if self._handle is not None:
                from IPython.display import HTML

                self._handle.update(HTML(table))
            return
        self._html.value = table
        self._bar.value = view.progress
        self._summary.value = summary(view)
        self._button.disabled = self.table.done
