"""The seed scenario: four data ids, each preloaded in ticks with progress and steps."""

from __future__ import annotations

import random
import shutil
import time
from typing import TYPE_CHECKING

from .display import detect_mode
from .display.base import VIEW_ROWS
from .display.table import final_text, format_table, summary
from .handle import PreloadHandle
from .state import PreloadState, PreloadStatus

if TYPE_CHECKING:
    from .executor_handle import ExecutorPreloadHandle

DATA_IDS = (
    "tt-data/tinky-winky.nc",
    "tt-data/dipsy.zarr",
    "tt-data/laa-laa.tiff",
    "tt-data/po.zarr.zip",
)


def demo_ids(count: int) -> tuple[str, ...]:
    """The seed's data ids, then made-up ones, *count* in all."""
    extra = (f"tt-data/noo-noo-{i}.nc" for i in range(1, count - len(DATA_IDS) + 1))
    return (*DATA_IDS, *extra)[:count]


def preload_data(handle: PreloadHandle, data_id: str, duration: float = 10.0) -> None:
    """Pretend to preload *data_id* in 100 ticks over 0.5-1.5 x *duration* seconds."""
    seconds = duration * random.uniform(0.5, 1.5)
    num_ticks = 100
    for i in range(num_ticks):
        time.sleep(seconds / num_ticks)
        if handle.cancelled:
            handle.notify(PreloadState(data_id, status=PreloadStatus.cancelled))
            return
        handle.notify(PreloadState(data_id, progress=i / num_ticks))
        if i % 10 == 0:
            handle.notify(PreloadState(data_id, message=f"Step #{i // 10 + 1}"))
    handle.notify(PreloadState(data_id, progress=1.0, message="Done."))


def final_table(handle: ExecutorPreloadHandle) -> str:
    """A run's final table and summary, as the display of a blocking run
    shows them here (in a terminal, or in a log)."""
    view = handle._ExecutorPreloadHandle__run.parent().table.view(VIEW_ROWS)
    if detect_mode() == "terminal":
        return final_text(view, shutil.get_terminal_size().columns)
    return format_table([row.state for row in view.rows]) + "\n" + summary(view)


def preload_or_fail(
    handle: PreloadHandle, data_id: str, duration: float = 10.0
) -> None:
    """As ``preload_data``; an id with "laa-laa" in it fails half way."""
    if "laa-laa" not in data_id:
        preload_data(handle, data_id, duration)
        return
    for i in range(50):
        time.sleep(duration / 100)
        handle.notify(
            PreloadState(data_id, progress=i / 100, message=f"Step #{i // 10 + 1}")
        )
    raise OSError(f"{data_id}: connection reset by peer")
