"""Display benchmarks, measured side by side in one run.

    python scripts/bench_display.py

1. The cost of one redraw of each live display with 10,000 ids (goal < 5 ms).
2. notify() throughput of a run of 10,000 ids with a live display against the
   same run with silent=True (goal: within 10%).
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import time

from preload import ExecutorPreloadHandle, PreloadState, PreloadStatus
from preload.display.log import LogDisplay
from preload.display.notebook import NotebookDisplay
from preload.display.terminal import TerminalDisplay
from preload.states import StateTable

IDS = 10_000
NOTIFIES = 20


def busy_table() -> StateTable:
    """10,000 ids: 8,990 completed, 10 failed, 2 running, the rest waiting."""
    ids = [f"id-{i:05d}" for i in range(IDS)]
    table = StateTable(ids)
    for i, data_id in enumerate(ids[:9_000]):
        table.apply(data_id, PreloadStatus.started, None, None, None)
        final = PreloadStatus.failed if i % 900 == 0 else PreloadStatus.completed
        table.apply(data_id, final, 1.0, "Done.", None)
    for data_id in ids[9_000:9_002]:
        table.apply(data_id, PreloadStatus.started, 0.5, "Converting", None)
    return table


def redraw_ms(display, repeat: int = 200) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        display.draw()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def bench_redraw() -> None:
    table = busy_table()
    terminal = TerminalDisplay(table, io.StringIO())
    log = LogDisplay(table, io.StringIO())
    notebook = NotebookDisplay(table, on_cancel=lambda: None)
    log_final = statistics.median(_timed(log.finish) for _ in range(50)) * 1e3
    print(
        f"redraw with {IDS:,} ids (30 rows shown):"
        f" terminal {redraw_ms(terminal):.2f} ms,"
        f" notebook panel {redraw_ms(notebook):.2f} ms, log final table"
        f" {log_final:.2f} ms (goal < 5 ms)"
    )


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def chatty(handle, data_id, notifies):
    for i in range(notifies):
        handle.notify(PreloadState(data_id, progress=(i + 1) / notifies))
    handle.notify(PreloadState(data_id, message="Done."))


def run_seconds(**kwargs) -> float:
    ids = [f"id-{i:05d}" for i in range(IDS)]
    t0 = time.perf_counter()
    handle = ExecutorPreloadHandle(ids, chatty, notifies=NOTIFIES, **kwargs)
    elapsed = time.perf_counter() - t0
    assert all(s.status is PreloadStatus.completed for s in handle.states)
    return elapsed


def bench_throughput(repeat: int) -> None:
    calls = IDS * (NOTIFIES + 1)
    results = {}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        for _ in range(repeat):
            for name, kwargs in [
                ("silent", {"silent": True}),
                ("terminal", {"display": "terminal"}),
                ("log", {"display": "log"}),
            ]:
                results.setdefault(name, []).append(run_seconds(**kwargs))
    best = {name: min(times) for name, times in results.items()}
    for name in ("terminal", "log"):
        print(
            f"{IDS:,} ids x {NOTIFIES + 1} notify(): {name} display"
            f" {calls / best[name]:,.0f} calls/s, silent {calls / best['silent']:,.0f}"
            f" calls/s: {best['silent'] / best[name]:.2f} of silent (goal >= 0.90)"
        )


def main() -> None:
    print(f"Python {sys.version.split()[0]}")
    bench_redraw()
    bench_throughput(repeat=5)


if __name__ == "__main__":
    main()
