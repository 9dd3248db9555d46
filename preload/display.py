"""How states are shown: xcube's status table (text and HTML) and status lines."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

import tabulate

from .state import PreloadState

HEADERS = ("Data ID", "Status", "Progress", "Message", "Exception")


def _row(state: PreloadState) -> list[str]:
    return [
        state.data_id,
        str(state.status) if state.status is not None else "-",
        f"{round(state.progress * 100)}%" if state.progress is not None else "-",
        state.message or "-",
        str(state.exception) if state.exception is not None else "-",
    ]


def format_table(states: Sequence[PreloadState], table_format: str = "simple") -> str:
    """The status table of *states* in a tabulate format ("simple", "html", ...)."""
    return tabulate.tabulate(
        [_row(s) for s in states], headers=HEADERS, tablefmt=table_format
    )


class StatusLines:
    """Prints one time-stamped line per status change (not a table per update)."""

    def __init__(self, stream: TextIO | None = None):
        self._stream = stream

    def __call__(self, state: PreloadState) -> None:
        stream = self._stream or sys.stdout
        line = f"{time.strftime('%H:%M:%S')} {state.data_id} {state.status}"
        if state.exception is not None:
            line += f": {type(state.exception).__name__}: {state.exception}"
        stream.write(line + "\n")
        stream.flush()
