"""Tables of states: xcube's five-column table, and the live table with
progress bars, elapsed time and worker CPU and memory."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from ..errors import describe
from ..state import PreloadState, PreloadStatus
from ..states import View
from .insight import Sample

HEADERS = ("Data ID", "Status", "Progress", "Message", "Exception")
LIVE_HEADERS = ("Data ID", "Status", "Progress", "Elapsed", "CPU", "Memory", "Message")
BAR = 10

# C0 and C1 control characters, DEL, and Unicode's line and paragraph
# separators: each would break a line or move the cursor.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """*text* on one line, control characters written as escapes (\\n, \\x1b)."""
    return _CONTROL.sub(_escape, text)


def _row(state: PreloadState) -> list[str]:
    return [
        printable(state.data_id),
        str(state.status) if state.status is not None else "-",
        percent(state.progress),
        printable(state.message or "-"),
        printable(str(state.exception)) if state.exception is not None else "-",
    ]


def format_table(states: Sequence[PreloadState], table_format: str = "simple") -> str:
    """The status table of *states* in a tabulate format ("simple", "html", ...)."""
    # Imported here: it takes ~50 ms, and workers (which import this package
    # through the forkserver) never format a table.
    import tabulate

    return tabulate.tabulate(
        [_row(s) for s in states], headers=HEADERS, tablefmt=table_format
    )


def percent(progress: float | None) -> str:
    return f"{round(progress * 100)}%" if progress is not None else "-"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return (
        f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    )


def size(rss: int | None) -> str:
    if rss is None:
        return "-"
    return f"{rss / 2**20:.0f} MiB"


def _note(state: PreloadState) -> str:
    if state.exception is not None:
        return describe(state.exception)
    return state.message or "-"


def summary(view: View) -> str:
    """'6 jobs: 2 STARTED, 3 COMPLETED, 1 WAITING | 0:12 elapsed | ~0:08 left'."""
    counts = ", ".join(
        f"{n} {status}" for status, n in sorted(view.counts.items(), key=_order)
    )
    jobs = "job" if view.total == 1 else "jobs"
    text = f"{view.total} {jobs}: {counts} | {duration(view.elapsed)} elapsed"
    if 0 < view.progress < 1:
        left = view.elapsed * (1 - view.progress) / view.progress
        text += f" | ~{duration(left)} left"
    return text


def _order(item: tuple[PreloadStatus, int]) -> int:
    return list(PreloadStatus).index(item[0])


def _headers(samples: dict[str, Sample]) -> list[str]:
    # A "Where" column for jobs that run elsewhere (a dask cluster's hosts).
    headers = list(LIVE_HEADERS)
    if any(s.where is not None for s in samples.values()):
        headers.insert(-1, "Where")
    return headers


def _live_cells(
    row, samples: dict[str, Sample], where: bool
) -> tuple[PreloadState, list[str]]:
    state = row.state
    sample = (
        samples.get(state.data_id) if state.status is PreloadStatus.started else None
    )
    cpu = sample.cpu if sample else None
    cells = [
        printable(state.data_id),
        str(state.status),
        percent(state.progress),
        duration(row.elapsed),
        f"{cpu:.0f}%" if cpu is not None else "-",
        size(sample.rss if sample else None),
    ]
    if where:
        cells.append(printable(sample.where or "-") if sample else "-")
    return state, [*cells, printable(_note(state))]


def live_text(view: View, samples: dict[str, Sample], width: int) -> list[str]:
    """The live table as lines of at most *width* characters, summary first."""
    rows = []
    headers = _headers(samples)
    for row in view.rows:
        state, cells = _live_cells(row, samples, "Where" in headers)
        cells[2] = _bar(state.progress) + " " + cells[2]
        rows.append(cells)
    lines = [summary(view), *_aligned([headers, *rows])]
    hidden = view.total - len(view.rows)
    if hidden:
        lines.append(f"... and {hidden} more jobs (see the counts above)")
    return [_fit(line, width) for line in lines]


def _aligned(rows: list[list[str]]) -> list[str]:
    # What tabulate's "simple" format does, several times faster for a redraw.
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    rule = ["-" * w for w in widths]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [rows[0], rule, *rows[1:]]
    ]


def _bar(progress: float | None) -> str:
    filled = round((progress or 0.0) * BAR)
    return "#" * filled + "." * (BAR - filled)


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(width - 1, 0)] + "~"


def live_html(view: View, samples: dict[str, Sample]) -> str:
    """The live table as HTML, with a progress bar in each row."""
    headers = _headers(samples)
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = []
    for row in view.rows:
        state, cells = _live_cells(row, samples, "Where" in headers)
        value = state.progress or 0.0
        cells = [html.escape(c) for c in cells]
        cells[2] = f'<progress value="{value:.3f}" max="1"></progress> {cells[2]}'
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    hidden = view.total - len(view.rows)
    if hidden:
        span = len(headers)
        body.append(f'<tr><td colspan="{span}">... and {hidden} more jobs</td></tr>')
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
