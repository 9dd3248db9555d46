"""Tables of states: xcube's five-column table, and the live table with
progress bars, elapsed time and worker CPU and memory."""

from __future__ import annotations

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


def live_percent(state: PreloadState) -> str:
    """A job's progress: 100% only once it has completed."""
    if state.status is PreloadStatus.completed:
        return "100%"
    if state.progress is None:
        return "-"
    return f"{min(int(state.progress * 100), 99)}%"


def duration(seconds: float | None) -> str:
    """'0:12', '1:02:03'."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return (
        f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    )


def elapsed(seconds: float | None) -> str:
    """A job's elapsed time: '0:00.9' below 10 s, else as ``duration``."""
    if seconds is None or seconds >= 10:
        return duration(seconds)
    tenths = int(seconds * 10)
    return f"0:0{tenths // 10}.{tenths % 10}"


def size(rss: int | None) -> str:
    if rss is None:
        return "-"
    return f"{rss / 2**20:.0f} MiB"


def _note(state: PreloadState) -> str:
    if state.exception is not None:
        return describe(state.exception)
    return state.message or "-"


ESTIMATE_AFTER = (0.1, 2.0)
"""Progress and seconds a run must have made before it shows a time left."""


def summary(view: View) -> str:
    """'6 jobs: 2 STARTED, 3 COMPLETED, 1 WAITING | 0:12 elapsed | ~0:08 left'."""
    jobs = "job" if view.total == 1 else "jobs"
    text = f"{view.total} {jobs}: {counts(view)} | {duration(view.elapsed)} elapsed"
    least_progress, least_seconds = ESTIMATE_AFTER
    if least_progress <= view.progress < 1 and view.elapsed >= least_seconds:
        left = view.elapsed * (1 - view.progress) / view.progress
        text += f" | ~{duration(left)} left"
    return text


def counts(view: View) -> str:
    """'2 STARTED, 3 COMPLETED, 1 WAITING'."""
    return ", ".join(
        f"{n} {status}" for status, n in sorted(view.counts.items(), key=_order)
    )


def _order(item: tuple[PreloadStatus, int]) -> int:
    return list(PreloadStatus).index(item[0])


# The live table's columns: ids and messages are text; the others are short,
# of steady width, and right-aligned.
_ID, _STATUS, _PROGRESS, _ELAPSED, _CPU, _MEMORY, _MESSAGE = range(7)
_NUMERIC = (_PROGRESS, _ELAPSED, _CPU, _MEMORY)
_INSIGHT = (_CPU, _MEMORY)


def _live_cells(row, samples: dict[str, Sample]) -> list[str]:
    state = row.state
    sample = (
        samples.get(state.data_id) if state.status is PreloadStatus.started else None
    )
    cpu, rss = (sample.cpu, sample.rss) if sample else (None, None)
    note = _note(state)
    if sample is not None and sample.where is not None:
        note = f"[{sample.where}] {note}"  # a job on a dask worker: host and pid
    return [
        printable(state.data_id),
        str(state.status),
        live_percent(state),
        elapsed(row.elapsed),
        f"{cpu:.0f}%" if cpu is not None else "-",
        size(rss) if rss is not None else "-",
        printable(note),
    ]


MIN_ID = 12
"""Characters a data id keeps at least when the terminal is narrow."""


def live_text(view: View, samples: dict[str, Sample], width: int) -> list[str]:
    """The live table as lines of at most *width* characters, summary first.

    The message gets the room first: as the width shrinks, the progress bars
    shrink and go, then long ids are cut in the middle, then messages at the
    end."""
    rows = [_live_cells(row, samples) for row in view.rows]
    table = [list(LIVE_HEADERS), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(LIVE_HEADERS))]
    pct = max([4] + [len(row[_PROGRESS]) for row in rows])  # "100%": steady
    others = sum(widths) - widths[_PROGRESS] + 2 * (len(widths) - 1)
    bar = min(BAR, width - others - 1 - pct)
    if bar < 4:  # too short to read: none
        bar = 0
    widths[_PROGRESS] = max(len(LIVE_HEADERS[_PROGRESS]), bar + 1 + pct if bar else pct)
    over = others + widths[_PROGRESS] - width
    if over > 0:
        widths[_ID] = max(widths[_ID] - over, min(MIN_ID, widths[_ID]))
    lines = [summary(view)]
    for i, cells in enumerate(table):
        cells = [middle_cut(cells[_ID], widths[_ID]), *cells[1:]]
        line = [
            cell.rjust(w) if column in _NUMERIC else cell.ljust(w)
            for column, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        if bar and i:
            cell = _bar(view.rows[i - 1].state, bar) + " " + cells[_PROGRESS].rjust(pct)
            line[_PROGRESS] = cell.rjust(widths[_PROGRESS])
        elif i == 0:
            line[_PROGRESS] = cells[_PROGRESS].ljust(widths[_PROGRESS])
        lines.append("  ".join(line).rstrip())
        if i == 0:
            rule = ["-" * len(cell) for cell in line]
            lines.append("  ".join(rule))
    hidden = view.total - len(view.rows)
    if hidden:
        lines.append(f"... and {hidden} more jobs (see the counts above)")
    return [_fit(line, width) for line in lines]


def middle_cut(text: str, width: int) -> str:
    """*text* in at most *width* characters, cut in the middle with '~'."""
    if len(text) <= width:
        return text
    keep = max(width - 1, 2)
    tail = keep // 2
    return text[: keep - tail] + "~" + text[len(text) - tail :]


def _bar(state: PreloadState, width: int) -> str:
    done = state.status is PreloadStatus.completed
    filled = width if done else min(int((state.progress or 0.0) * width), width)
    return "#" * filled + "." * (width - filled)


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(width - 1, 0)] + "~"


COLOURS = {
    PreloadStatus.waiting: ("#616161", "#bdbdbd"),
    PreloadStatus.started: ("#1565c0", "#90caf9"),
    PreloadStatus.completed: ("#2e7d32", "#a5d6a7"),
    PreloadStatus.cancelled: ("#b45309", "#fcd34d"),
    PreloadStatus.failed: ("#c62828", "#ef9a9a"),
}
"""Per status: the colour of its name and of its progress bar."""

# Inline styles: notebook styles do not reach a widget's HTML, and a
# sanitizer may drop a <style> element. Fixed widths for the short columns
# (px, at 12 px type); the data id and the message share the rest, so that
# the table fits an output area of 460 px.
_COLUMN_WIDTHS = (None, 96, 70, 64, 44, 66, None)
_CELL = (
    "padding:3px 6px;border-bottom:1px solid #e0e0e0;white-space:nowrap;"
    "overflow:hidden;text-overflow:ellipsis;vertical-align:middle;"
)
_TABLE = (
    "table-layout:fixed;width:100%;max-width:100%;border-collapse:collapse;"
    "margin:0;font-size:12px;line-height:1.4;font-variant-numeric:tabular-nums;"
)
_ID_TAIL = 6
"""Characters at the end of a long id that stay when it is cut in the middle."""


_HTML_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"}
)


def _html_text(text: str) -> str:
    """*text* safe in HTML content and quoted attributes (as ``html.escape``,
    whose module costs every process that imports this one ~2 ms)."""
    return text.translate(_HTML_ESCAPES)


def _td(content: str, align: str = "left", title: str | None = None) -> str:
    hover = f' title="{_html_text(title)}"' if title else ""
    return f'<td style="{_CELL}text-align:{align}"{hover}>{content}</td>'


def _id_html(data_id: str) -> str:
    # Cut in the middle as the column narrows: the start shrinks to an
    # ellipsis (keeping a character or two), the end stays.
    if len(data_id) <= _ID_TAIL + 4:
        return _html_text(data_id)
    head, tail = data_id[:-_ID_TAIL], data_id[-_ID_TAIL:]
    return (
        '<div style="display:flex;min-width:0">'
        '<span style="flex:0 1 auto;min-width:1em;overflow:hidden;'
        f'text-overflow:ellipsis;white-space:pre">{_html_text(head)}</span>'
        f'<span style="flex:none;white-space:pre">{_html_text(tail)}</span></div>'
    )


def _progress_html(state: PreloadState, label: str) -> str:
    done = state.status is PreloadStatus.completed
    value = 1.0 if done else min(max(state.progress or 0.0, 0.0), 1.0)
    bar = COLOURS[state.status][1]
    return (
        '<div style="position:relative;height:16px;background:#eeeeee;'
        'border-radius:3px;overflow:hidden">'
        f'<div style="width:{value * 100:.1f}%;height:100%;background:{bar}"></div>'
        '<div style="position:absolute;top:0;left:0;right:0;text-align:center;'
        f'line-height:16px;color:#212121">{label}</div></div>'
    )


def live_html(view: View, samples: dict[str, Sample], insight: bool = True) -> str:
    """The live table as HTML: a coloured status and progress bar per row,
    long ids and messages cut with their full text on hover. Without
    *insight* (a run that has ended), no CPU and memory columns: the data id
    and the message get their room."""
    shown = [i for i in range(len(LIVE_HEADERS)) if insight or i not in _INSIGHT]
    cols = "".join(
        f'<col style="width:{_COLUMN_WIDTHS[i]}px">' if _COLUMN_WIDTHS[i] else "<col>"
        for i in shown
    )
    head = "".join(
        f'<th style="{_CELL}text-align:{"right" if i in _NUMERIC else "left"};'
        f'font-size:11px;font-weight:600;border-bottom:1px solid #9e9e9e">'
        f"{LIVE_HEADERS[i]}</th>"
        for i in shown
    )
    body = []
    for row in view.rows:
        state = row.state
        cells = _live_cells(row, samples)
        colour = COLOURS[state.status][0]
        body.append(
            "<tr>"
            + _td(_id_html(cells[_ID]), title=cells[_ID])
            + _td(f'<span style="color:{colour}">{cells[1]}</span>')
            + _td(_progress_html(state, cells[_PROGRESS]), "center")
            + "".join(
                _td(cells[i], "right")
                for i in (_ELAPSED, _CPU, _MEMORY)
                if insight or i not in _INSIGHT
            )
            + _td(_html_text(cells[_MESSAGE]), title=cells[_MESSAGE])
            + "</tr>"
        )
    hidden = view.total - len(view.rows)
    if hidden:
        body.append(
            f'<tr><td colspan="{len(shown)}" style="{_CELL}">... and {hidden} more jobs'
        )
        body[-1] += "</td></tr>"
    return (
        f'<table class="preload-table" style="{_TABLE}"><colgroup>{cols}</colgroup>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


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


def overall(view: View) -> float:
    """The overall bar's value: the run's progress; for a run that ended
    with cancelled or failed jobs, the share of the work done (a completed
    job counts 1, another its last progress; 0 for the rows not shown)."""
    if view.done < view.total or not view.total:
        return view.progress
    done = sum(
        1.0 if row.state.status is PreloadStatus.completed else row.state.progress or 0
        for row in view.rows
    )
    return done / view.total


_OUTCOME_COLOURS = {
    "info": "#2196f3",
    "success": "#4caf50",
    "warning": "#ff9800",
    "danger": "#f44336",
}


def final_html(view: View) -> str:
    """The ended panel without widgets: the table, the overall bar coloured by
    outcome, the summary. For renderers without widgets (nbconvert, GitHub,
    nbviewer) and in place of the panel once the run has ended."""
    style, label = outcome(view)
    bar = (
        f'<div data-outcome="{style}" style="display:flex;align-items:center;'
        'gap:8px;margin:6px 0 4px;font-size:13px">'
        f"<span>{_html_text(label)}</span>"
        '<div style="flex:1;height:12px;background:#eeeeee;overflow:hidden">'
        f'<div style="width:{overall(view) * 100:.1f}%;height:100%;'
        f'background:{_OUTCOME_COLOURS[style]}"></div></div></div>'
    )
    return (
        f'<div class="preload-panel" style="max-width:100%;overflow:hidden">'
        f"{live_html(view, {}, insight=False)}{bar}"
        f'<div style="font-size:13px">{_html_text(summary(view))}</div></div>'
    )


def final_text(view: View, width: int) -> str:
    """The summary and the table as text."""
    return "\n".join(live_text(view, {}, width))
