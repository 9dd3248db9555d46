"""The notebook display: an ipywidgets panel that updates in place.

A ``VBox`` holding the live table (HTML, a progress bar per row), an
overall progress bar coloured by outcome, a summary and a Cancel button.
Without ipywidgets, an HTML table updated through an IPython display handle.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..states import StateTable
from .base import VIEW_ROWS, Display
from .insight import Insight
from .table import final_html, final_text, live_html, outcome, overall, summary


def in_notebook() -> bool:
    """True inside a Jupyter kernel."""
    # A kernel has imported IPython long before; importing it here (~0.4 s)
    # would only slow down scripts.
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    return type(ipython.get_ipython()).__name__ == "ZMQInteractiveShell"


class NotebookDisplay(Display):
    """The panel; once the run has ended, every output that shows it is
    replaced by the ended panel as HTML (``handle.widget`` stays live)."""

    updates_in_place = True

    def __init__(
        self,
        table: StateTable,
        on_cancel: Callable[[], None],
        insight: Insight | None = None,
    ):
        super().__init__(table, insight)
        self._outputs: list[Any] = []  # IPython display handles
        try:
            import ipywidgets as widgets
        except ImportError:
            self.widget = None
            return
        self._html = widgets.HTML(layout=widgets.Layout(width="100%"))
        self._bar = widgets.FloatProgress(
            min=0.0,
            max=1.0,
            description="Running",
            style={"description_width": "initial"},
            layout=widgets.Layout(flex="1 1 auto", width="auto", min_width="120px"),
        )
        self._summary = widgets.Label(layout=widgets.Layout(width="auto"))
        self._button = widgets.Button(
            description="Cancel",
            icon="stop",
            tooltip="Cancel the jobs of this run",
            layout=widgets.Layout(width="auto", flex="none"),
        )
        self._button.on_click(lambda _: on_cancel())
        self.widget: Any = widgets.VBox(
            [
                self._html,
                widgets.HBox(
                    [self._bar, self._button], layout=widgets.Layout(width="100%")
                ),
                self._summary,
            ],
            layout=widgets.Layout(max_width="100%", overflow="hidden"),
        )
        self.draw()

    def _bundle(self) -> dict[str, Any]:
        view = self.table.view(VIEW_ROWS)
        if view.done == view.total:
            # The ended run, as HTML: in place of the panel, so that every
            # renderer shows it, with or without widgets (nbconvert's HTML
            # opened offline, GitHub, nbviewer).
            return {"text/html": final_html(view), "text/plain": final_text(view, 100)}
        if self.widget is None:
            return {"text/html": live_html(view, {}), "text/plain": summary(view)}
        return {**self.widget._repr_mimebundle_(), "text/plain": summary(view)}

    def show(self) -> None:
        """Display the live panel in the current cell."""
        from IPython.display import display

        self._outputs.append(display(self._bundle(), raw=True, display_id=True))

    def draw(self) -> None:
        view = self.table.view(VIEW_ROWS)
        if self.widget is None:
            self._update_outputs()
            return
        self._html.value = live_html(view, self.samples())
        style, label = outcome(view)
        self._bar.bar_style = style
        self._bar.description = label
        self._bar.value = overall(view)
        self._summary.value = summary(view)
        self._button.disabled = self.table.done

    def finish(self) -> None:
        self.draw()
        if self.widget is not None:
            self._update_outputs()  # the ended panel, without widgets

    def _update_outputs(self) -> None:
        bundle = self._bundle()
        for output in self._outputs:
            output.update(bundle, raw=True)
