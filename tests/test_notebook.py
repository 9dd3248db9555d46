"""The seed notebook, imports changed and durations shortened, in a real kernel."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parent.parent / "docs" / "examples" / "preload-demo.ipynb"


def outputs_of(nb, source):
    [cell] = [c for c in nb.cells if c.cell_type == "code" and c.source == source]
    return cell.outputs


def text_of(outputs, kind="stream"):
    if kind == "stream":
        return "".join(o.text for o in outputs if o.output_type == "stream")
    [result] = [o for o in outputs if o.output_type == "execute_result"]
    return result.data[kind]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_seed_notebook_runs_and_shows_what_xcube_shows():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=60).execute()

    lines = text_of(
        outputs_of(
            nb, "handle = ExecutorPreloadHandle(data_ids, preload_data=preload_data)"
        )
    ).splitlines()
    # One line per status change, no table per update.
    assert (
        sorted(line.split()[2] for line in lines) == ["COMPLETED"] * 4 + ["STARTED"] * 4
    )

    html = text_of(outputs_of(nb, "handle"), "text/html")
    assert html.startswith("<table>")
    rows = re.findall(r"<tr><td>(tt-data/[^<]+?)\s*</td><td>(\w+)\s*</td>", html)
    assert [status for _, status in rows] == ["COMPLETED"] * 4

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
    assert table[0].split() == [
        "Data",
        "ID",
        "Status",
        "Progress",
        "Message",
        "Exception",
    ]
    assert len(table) == 6
    # Jobs not started were cancelled at once; running ones stop within a tick.
    assert {line.split()[1] for line in table[2:]} <= {"STARTED", "CANCELLED"}
    assert table[-1].split()[1] == "CANCELLED"

    html = text_of(outputs_of(nb, "async_handle"), "text/html")
    rows = re.findall(r"<tr><td>(tt-data/[^<]+?)\s*</td><td>(\w+)\s*</td>", html)
    assert [status for _, status in rows] == ["CANCELLED"] * 4
