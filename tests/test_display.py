"""Displays: a live table in a real pseudo-terminal, quiet lines in a pipe,
and views that stay small with many ids."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap
import time

import pytest
from screen import replay

from preload import PreloadState, PreloadStatus
from preload.display.table import live_html, live_text
from preload.states import StateTable

S = PreloadStatus

SCRIPT = textwrap.dedent(
    """
    import sys
    from preload import ExecutorPreloadHandle
    from preload.demo import DATA_IDS, preload_data

    if __name__ == "__main__":
        ExecutorPreloadHandle(DATA_IDS, preload_data, duration=float(sys.argv[1]))
        print("after the call")
    """
)

HEADER = ["Data", "ID", "Status", "Progress", "Elapsed", "CPU", "Memory", "Message"]


def run_script(
    tmp_path, duration: float, tty: bool, columns: int = 120, script: str = SCRIPT
) -> str:
    path = tmp_path / "script.py"
    path.write_text(script)
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50"}
    args = [sys.executable, str(path), str(duration)]
    if not tty:
        return subprocess.run(
            args, capture_output=True, text=True, timeout=60, env=env, check=True
        ).stdout
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(args, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the other side closed: the script ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert proc.wait(10) == 0
    return b"".join(chunks).decode()


def test_terminal_table_is_redrawn_in_place(tmp_path):
    output = run_script(tmp_path, duration=1.0, tty=True)
    assert "\x1b[7F\x1b[J" in output  # cursor up over the last table, clear
    redraws = output.count("\x1b[J")
    assert 3 <= redraws <= 10 * 4  # ~10 a second at most, over <= 4 s
    screen = replay(output)
    # The final table stays on screen, once, then what the script printed.
    assert [line.split() for line in screen].count(HEADER) == 1
    assert screen[0].startswith("4 jobs: 4 COMPLETED | 0:0")
    rows = [line.split() for line in screen[3:7]]
    assert [row[1] for row in rows] == ["COMPLETED"] * 4
    assert all(row[2] == "##########" and row[3] == "100%" for row in rows)
    assert screen[-1] == "after the call"


def test_terminal_table_fits_the_width(tmp_path):
    output = run_script(tmp_path, duration=0.5, tty=True, columns=60)
    for line in replay(output):
        assert len(line) <= 60, line


def test_log_output_is_quiet(tmp_path):
    output = run_script(tmp_path, duration=1.0, tty=False)
    assert "\x1b" not in output
    lines = output.splitlines()
    assert len(lines) <= 40
    status_lines = [line for line in lines if line[:2].isdigit() and line[2] == ":"]
    assert len(status_lines) == 8  # STARTED and COMPLETED, for four ids
    assert sum(line.split()[:2] == ["Data", "ID"] for line in lines) == 1
    assert lines[-2].startswith("4 jobs: 4 COMPLETED")
    assert lines[-1] == "after the call"


CONTROL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from preload import ExecutorPreloadHandle, PreloadState

    def job(handle, data_id):
        for step in range(4):
            message = f"step {step}\\nof 4\\r\\x1b[2J\\u2028end"
            handle.notify(PreloadState(data_id, progress=step / 4, message=message))
            time.sleep(float(sys.argv[1]) / 4)
        if data_id.startswith("bad"):
            raise ValueError("two\\nlines")

    if __name__ == "__main__":
        handle = ExecutorPreloadHandle(["one\\ntwo", "bad\\tid"], job)
        print("after the call")
        print(handle)
    """
)


@pytest.mark.parametrize("tty", [True, False], ids=["terminal", "log"])
def test_control_characters_are_shown_escaped(tmp_path, tty):
    output = run_script(tmp_path, duration=0.6, tty=tty, script=CONTROL_SCRIPT)
    message = "step 3\\nof 4\\r\\x1b[2J\\u2028end"
    if tty:
        # Redrawn in place with no stale rows: the final table, once.
        screen = replay(output)
        assert [line.split() for line in screen].count(HEADER) == 1
        assert screen[0].startswith("2 jobs: 1 COMPLETED, 1 FAILED")
        one, bad = screen[3:5]
        assert one.split()[:2] == ["one\\ntwo", "COMPLETED"]
        assert one.endswith(message)
        assert bad.split()[:2] == ["bad\\tid", "FAILED"]
        assert bad.endswith("ValueError: two\\nlines")
    else:
        screen = output.splitlines()
        status_lines = [line.split(" ", 1)[1] for line in screen if line[2:3] == ":"]
        assert sorted(status_lines) == [
            "bad\\tid FAILED: ValueError: two\\nlines",
            "bad\\tid STARTED",
            "one\\ntwo COMPLETED",
            "one\\ntwo STARTED",
        ]
    # str(handle), xcube's table: a line a row.
    table = screen[screen.index("after the call") + 1 :]
    assert len(table) == 4
    assert table[2].split()[:2] == ["one\\ntwo", "COMPLETED"]
    assert table[2].rstrip().endswith(f"{message}  -")
    assert table[3].split()[:2] == ["bad\\tid", "FAILED"]
    assert table[3].endswith("two\\nlines")


@pytest.fixture
def big_table():
    ids = [f"id-{i:05d}" for i in range(10_000)]
    table = StateTable(ids)
    for i, data_id in enumerate(ids[:9_000]):
        table.apply(data_id, S.started, None, None, None)
        final = S.failed if i % 1000 == 0 else S.completed
        table.apply(data_id, final, 1.0, "done", None)
    for data_id in ids[9_000:9_002]:
        table.apply(data_id, S.started, 0.5, "half way", None)
    return table


def test_a_view_of_10000_ids_stays_small(big_table):
    view = big_table.view(30)
    assert len(view.rows) == 30
    shown = [row.state for row in view.rows]
    # Running first, then the failed, then the most recent finished ones.
    assert [s.status for s in shown[:2]] == [S.started, S.started]
    assert [s.status for s in shown[2:11]] == [S.failed] * 9
    assert shown[11].data_id == "id-08999"
    assert view.counts == {S.waiting: 998, S.started: 2, S.completed: 8991, S.failed: 9}
    lines = live_text(view, {}, width=200)
    assert len(lines) == 1 + 2 + 30 + 1
    assert lines[-1] == "... and 9970 more jobs (see the counts above)"
    assert live_html(view, {}).count("<tr>") == 1 + 30 + 1


def test_an_update_after_the_final_status_is_dropped():
    table = StateTable(["a"])
    assert table.apply("a", S.completed, 1.0, None, None)
    assert not table.apply("a", S.failed, None, "late", None)
    assert table.get("a") == PreloadState("a", S.completed, 1.0)


def test_log_summary_comes_while_jobs_run(monkeypatch):
    import io

    from preload.display import log

    monkeypatch.setattr(log, "SUMMARY_EVERY", 0.0)
    table = StateTable(["a", "b"])
    table.apply("a", S.started, 0.5, None, None)
    stream = io.StringIO()
    display = log.LogDisplay(table, stream)
    display.refresh(changed=True)
    [line] = stream.getvalue().splitlines()
    # No time left yet: too early for an estimate to mean something.
    assert line.endswith("2 jobs: 1 WAITING, 1 STARTED | 0:00 elapsed")
    table.apply("a", S.completed, 1.0, None, None)
    table.apply("b", S.cancelled, None, None, None)
    table.settle()
    display.refresh(changed=True)  # every job ended: no more summaries
    assert len(stream.getvalue().splitlines()) == 1


def test_notebook_display_without_ipywidgets_updates_an_html_display(monkeypatch):
    import IPython.display

    from preload.display.notebook import NotebookDisplay

    shown = []

    class Handle:
        def update(self, obj, raw=False):
            shown.append(("update", obj["text/html"]))

    def display(obj, raw=False, display_id=False):
        shown.append(("display", obj["text/html"]))
        return Handle()

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails
    monkeypatch.setattr(IPython.display, "display", display)
    table = StateTable(["a"])
    panel = NotebookDisplay(table, on_cancel=lambda: None)
    assert panel.widget is None
    panel.show()
    table.apply("a", S.completed, 1.0, "Done.", None)
    panel.draw()
    (first, html), (then, updated) = shown
    assert (first, then) == ("display", "update")
    assert ">WAITING</span>" in html
    assert ">COMPLETED</span>" in updated


def _view(*states, elapsed=(), ids=None):
    """A view of a table with *states* applied (status, progress, message,
    exception per id), each job started *elapsed* seconds ago."""
    ids = ids or [f"id-{i}" for i in range(len(states))]
    table = StateTable(ids)
    for data_id, (status, progress, message, exc) in zip(ids, states, strict=True):
        table.apply(data_id, S.started, None, None, None)
        table.apply(data_id, status, progress, message, exc)
    view = table.view(30)
    rows = [
        row._replace(elapsed=seconds)
        for row, seconds in zip(view.rows, [*elapsed, *[0.0] * len(ids)], strict=False)
    ]
    return view._replace(rows=rows)


def test_elapsed_shows_tenths_below_10_s_and_100_percent_only_once_completed():
    view = _view(
        (S.started, 0.42, "Step #5", None),
        (S.started, 0.999, "converting sample-1.nc: lon", None),
        (S.completed, None, "Done.", None),
        elapsed=(0.9, 9.99, 12.3),
    )
    rows = [line.split() for line in live_text(view, {}, width=120)[3:]]
    assert [row[3:5] for row in rows] == [
        ["42%", "0:00.9"],
        ["99%", "0:09.9"],
        ["100%", "0:12"],
    ]
    assert [row[2] for row in rows] == ["####......", "#########.", "##########"]


def test_at_80_columns_the_message_gets_the_room_and_a_failure_its_reason():
    view = _view(
        (S.started, 0.5, "converting a.nc: lon", None),
        (S.failed, 0.3, "converting b.nc: lat", ValueError("no 'x'")),
        (S.completed, 1.0, "Done.", None),
        ids=["s3://bucket/" + "a" * 40 + "/cube-0001.zarr", "tt-data/dipsy.zarr", "c"],
    )
    lines = live_text(view, {}, width=80)
    assert all(len(line) <= 80 for line in lines)
    header, _, first, failed, _ = lines[1:]
    assert header.endswith("Message")
    assert first.endswith("converting a.nc: lon")
    # A long id is cut in the middle: its start and its end stay.
    assert (
        first.startswith("s3://")
        and "~" in first.split()[0]
        and first.split()[0].endswith(".zarr")
    )
    assert failed.split()[1] == "FAILED"
    assert failed.endswith("ValueError: no 'x'")


def test_the_time_left_shows_once_it_means_something(monkeypatch):
    from preload.display.table import summary

    view = _view((S.started, 0.05, None, None), (S.completed, 1.0, None, None))
    assert "left" not in summary(view._replace(progress=0.05, elapsed=0.6))
    assert "left" not in summary(view._replace(progress=0.5, elapsed=1.0))
    assert summary(view._replace(progress=0.5, elapsed=4.0)).endswith("| ~0:04 left")


def test_html_table_keeps_steady_widths_and_cuts_long_text_with_a_hover():
    long_id = "s3://bucket/" + "a" * 40 + "/cube-0001.zarr"
    message = "converting sample-1.nc: " + "lon " * 30
    view = _view((S.started, 0.42, message, None), ids=[long_id])
    html = live_html(view, {})
    assert 'style="table-layout:fixed;width:100%' in html
    assert '<col style="width:64px">' in html  # Elapsed: steady as it changes
    assert f'title="{long_id}"' in html and f'title="{message}"' in html
    # The id's end stays whole as the start is cut.
    assert '<span style="flex:none;white-space:pre">1.zarr</span>' in html
    assert "text-overflow:ellipsis" in html
    assert ">42%</div>" in html


def test_ids_and_messages_are_text_in_the_html_table():
    data_id = "<b>cube</b> & 'x'"
    message = 'reading "<script>alert(1)</script>"'
    html = live_html(_view((S.started, 0.5, message, None), ids=[data_id]), {})
    assert "<b>" not in html and "<script>" not in html
    assert "&lt;b&gt;cube&lt;/b&gt; &amp; &#x27;x&#x27;" in html
    assert 'title="reading &quot;&lt;script&gt;alert(1)&lt;/script&gt;&quot;"' in html


def test_the_ended_panel_is_coloured_and_labelled_by_outcome():
    from preload.display.table import final_html, outcome, overall

    completed = _view((S.completed, 1.0, None, None), (S.completed, None, None, None))
    cancelled = _view((S.completed, 1.0, None, None), (S.cancelled, 0.5, None, None))
    failed = _view((S.cancelled, 0.5, None, None), (S.failed, 0.2, None, None))
    assert (outcome(completed), overall(completed)) == (("success", "Completed"), 1.0)
    # Not a full bar that reads as success: the share of the work done.
    assert (outcome(cancelled), overall(cancelled)) == (
        ("warning", "1 cancelled"),
        0.75,
    )
    assert outcome(failed) == ("danger", "1 failed")
    html = final_html(cancelled)
    assert 'data-outcome="warning"' in html and "width:75.0%" in html
    assert html.count("<tr>") == 3 and "2 jobs: 1 COMPLETED, 1 CANCELLED" in html
    # Ended: no CPU and memory columns (nothing runs), more room for the rest.
    assert ">CPU</th>" not in html and ">Memory</th>" not in html
    assert html.count("<col ") + html.count("<col>") == 5 and ">Elapsed</th>" in html
    assert ">CPU</th>" in live_html(cancelled, {})
