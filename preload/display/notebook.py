"""The notebook display: an ipywidgets panel that updates in place.

A ``VBox`` holding the live table (HTML, a progress bar per row), an
overall progress bar coloured by outcome, a summary and a Cancel button.
Without ipywidgets, an HTML table updated through an IPython display handle.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..state import PreloadStatus
from ..states import StateTable, View
from .base import VIEW_ROWS, Display
from .insight import Insight
from .table import final_html, live_html, summary


def in_notebook() -> bool:
    """True inside a Jupyter kernel."""
    # A kernel has imported IPython long before; importing it here (~0.4 s)
    # would only slow down scripts.
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    return type(ipython.get_ipython()).__name__ == "ZMQInteractiveShell"


def outcome(view: View) -> tuple[str, str]:
    """The overall bar's style and label: running, or how the run ended."""
    if view.done < view.total:
        return "info", "Running"
    failed = view.counts.get(PreloadStatus.failed, 0)
    cancelled = view.counts.get(PreloadStatus.cancelled, 0)
    if failed:
        return "danger", f"{failed} failed"
    if cancelled:
        return "warning", f"{cancelled} cancelled"
    return "success", "Completed"


def _work_done(view: View) -> float:
    """The share of the work a cancelled run did: a completed job counts 1,
    another its last progress (0 for those not shown)."""
    done = sum(
        1.0 if row.state.status is PreloadStatus.completed else row.state.progress or 0
        for row in view.rows
    )
    return done / view.total


class NotebookDisplay(Display):
    """The panel; at the end, every output that shows it also carries the
    final table as HTML, for renderers without widgets (nbconvert, GitHub,
    nbviewer)."""

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
        bundle: dict[str, Any] = {"text/plain": summary(view)}
        if view.done == view.total or self.widget is None:
            bundle["text/html"] = final_html(view)
        if self.widget is not None:
            bundle.update(self.widget._repr_mimebundle_())
            bundle["text/plain"] = summary(view)
        return bundle

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
        self._bar.value = view.progress if style != "warning" else _work_done(view)
        self._summary.value = summary(view)
        self._button.disabled = self.table.done

    def finish(self) -> None:
        self.draw()
        if self.widget is not None:
            self._update_outputs()

    def _update_outputs(self) -> None:
        bundle = self._bundle()
        for output in self._outputs:
            output.update(bundle, raw=True)
