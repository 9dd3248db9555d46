"""Worker insight: CPU and memory of the worker process running each job."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import psutil

REFRESH = 1.0
"""Seconds between two samples."""


class Sample(NamedTuple):
    cpu: float | None
    """Percent of one CPU since the previous sample (None: not sampled yet)."""
    rss: int | None
    """Resident memory in bytes."""
    where: str | None = None
    """Where the job runs, if not in a worker of ours ("host pid 123")."""


class Insight:
    """Samples, about once a second, the workers that run jobs now."""

    def __init__(self, running: Callable[[], dict[str, int | Sample]]):
        self._running = running  # data id -> worker pid, or a remote sample
        self._procs: dict[int, psutil.Process] = {}
        self._samples: dict[str, Sample] = {}
        self._next = 0.0

    def samples(self) -> dict[str, Sample]:
        import psutil  # here: a worker that imports the displays need not

        now = time.monotonic()
        if now < self._next:
            return self._samples
        self._next = now + REFRESH
        samples = {}
        procs = {}
        for data_id, pid in self._running().items():
            if isinstance(pid, Sample):  # sampled where it runs (a dask worker)
                samples[data_id] = pid
                continue
            proc = self._procs.get(pid)
            try:
                if proc is None:
                    proc = psutil.Process(pid)
                    proc.cpu_percent(None)  # the first call only starts counting
                with proc.oneshot():
                    samples[data_id] = Sample(
                        proc.cpu_percent(None), proc.memory_info().rss
                    )
            except psutil.Error:
                continue
            procs[pid] = proc
        self._procs, self._samples = procs, samples
        return samples
