"""The seed notebook, imports changed and durations shortened, in a real kernel.

Updates sent from the collector thread are recorded while a cell runs. Once
a run has ended, its panel's output is replaced by the ended panel as HTML,
which any renderer shows, with or without widgets.
"""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parent.parent / "docs" / "examples" / "preload-demo.ipynb"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
ROW = re.compile(r"<tr><td>(tt-data/[^<]+?)\s*</td><td>(\w+)\s*</td>")
LIVE_STATUS = re.compile(r'<span style="color:#\w+">(\w+)</span>')
OUTCOME = re.compile(r'data-outcome="(\w+)"')
SUMMARY = re.compile(r'<div style="font-size:13px">([^<]+)</div></div>$')


def outputs_of(nb, source):
    [cell] = [c for c in nb.cells if c.cell_type == "code" and c.source == source]
    return cell.outputs


def text_of(outputs, kind="stream"):
    if kind == "stream":
        return "".join(o.text for o in outputs if o.output_type == "stream")
    [result] = [o for o in outputs if o.output_type == "execute_result"]
    return result.data[kind]


def panel_of(outputs) -> dict:
    """What the output of a panel shows once its run has ended: the ended
    panel as HTML (in place of the widget), its statuses and outcome."""
    [data] = [o.data for o in outputs if "text/html" in o.get("data", {})]
    assert WIDGET_VIEW not in data
    html = data["text/html"]
    return {
        "statuses": LIVE_STATUS.findall(html),
        "outcome": OUTCOME.search(html).group(1),
        "summary": SUMMARY.search(html).group(1),
    }


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_seed_notebook_runs_and_shows_what_xcube_shows():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, kernel_name="python3", timeout=60, store_widget_state=True
    ).execute()

    # The blocking call shows a live panel; it ends with four COMPLETED rows.
    blocking = outputs_of(
        nb, "handle = ExecutorPreloadHandle(data_ids, preload_data=preload_data)"
    )
    panel = panel_of(blocking)
    assert panel["statuses"] == ["COMPLETED"] * 4
    assert panel["outcome"] == "success"
    assert panel["summary"].startswith("4 jobs: 4 COMPLETED")

    # A bare handle renders xcube's HTML table.
    html = text_of(outputs_of(nb, "handle"), "text/html")
    assert html.startswith("<table>")
    assert [status for _, status in ROW.findall(html)] == ["COMPLETED"] * 4

    state_repr = text_of(
        outputs_of(nb, 'async_handle.get_state("tt-data/dipsy.zarr")'), "text/plain"
    )
    assert re.fullmatch(
        r"PreloadState\(data_id='tt-data/dipsy.zarr', status=PreloadStatus\.started"
        r"(, progress=0\.\d+)?(, message='Step #\d+')?\)",
        state_repr,
    ), state_repr
    state_str = text_of(
        outputs_of(nb, 'print(async_handle.get_state("tt-data/dipsy.zarr"))')
    )
    assert re.fullmatch(
        r"data_id=tt-data/dipsy.zarr, status=STARTED(, progress=0\.\d+)?"
        r"(, message=Step #\d+)?\n",
        state_str,
    ), state_str

    table = text_of(outputs_of(nb, "print(async_handle)")).splitlines()
    header = ["Data", "ID", "Status", "Progress", "Message", "Exception"]
    assert table[0].split() == header
    assert len(table) == 6
    # Jobs not started were cancelled at once; running ones stop within a tick.
    assert {line.split()[1] for line in table[2:]} <= {"STARTED", "CANCELLED"}
    assert table[-1].split()[1] == "CANCELLED"

    # show() displayed the live panel: after cancel() and wait(), all CANCELLED.
    # show() displayed the live panel. Its run ended after cancel(), in the
    # background: if that was between two cells, nbclient recorded no update
    # (JupyterLab applies it by display id, whenever it comes).
    outputs = outputs_of(nb, "async_handle.show()")
    if any("text/html" in output.get("data", {}) for output in outputs):
        panel = panel_of(outputs)
        assert panel["statuses"] == ["CANCELLED"] * 4
        assert panel["outcome"] == "warning"
    html = text_of(outputs_of(nb, "async_handle"), "text/html")
    assert [status for _, status in ROW.findall(html)] == ["CANCELLED"] * 4

    # The Cancel button cancels a running handle.
    cells = [c.source for c in nb.cells]
    show = "button_handle.show()"
    [source] = [s for s in cells if s.endswith(show)]
    panel = panel_of(outputs_of(nb, source))
    assert panel["statuses"] == ["CANCELLED"] * 4
    printed = text_of(outputs_of(nb, "print(button_handle)")).splitlines()
    assert [line.split()[1] for line in printed[2:]] == ["CANCELLED"] * 4
