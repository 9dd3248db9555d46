"""Shared memory between the parent and the workers of its own pool.

* ``Roster`` (one per pool): which job each worker runs, and since when.
  Workers write it at each job start and end; the parent reads it to time
  jobs out and to tell which job a dead worker was running.
* ``Phases`` (one per run): whether each job is queued, running or ended in
  its worker (the roster writes it); the parent reads it to cancel the
  queued jobs at once and to find a job whose result never arrived.
* ``StopFlags`` (one per run): a flag per job, raised by the parent when the
  job exceeds its timeout, or for every job on cancel; the job sees its own
  ``handle.cancelled``.

Both are plain shared memory (no lock, no round trip): a read or write costs
about 0.1 us, and survives a worker's death.
"""

from __future__ import annotations

import os
import time
from multiprocessing.context import BaseContext
from typing import NamedTuple

IDLE = -1.0

QUEUED, RUNNING, ENDED = 0, 1, 2
"""Phases of a job in its worker."""


class Running(NamedTuple):
    pid: int
    index: int
    since: float
    """``time.monotonic()`` at the job's start (system-wide on Linux)."""


class Phases:
    """The phase of each job (QUEUED, RUNNING, ENDED) in its latest run."""

    def __init__(self, context: BaseContext, jobs: int):
        self._cells = context.Array("b", max(jobs, 1), lock=False)

    def set(self, index: int, phase: int) -> None:
        self._cells[index] = phase

    def get(self, index: int) -> int:
        return self._cells[index]

    def all(self) -> list[int]:
        return self._cells[:]


class Roster:
    """Three numbers per worker slot: pid, job index (IDLE when idle), start
    time; it marks each job's phase as the job starts and ends."""

    def __init__(self, context: BaseContext, workers: int, phases: Phases):
        self._cells = context.Array("d", 3 * workers, lock=False)
        self._next = context.Value("i", 0)
        self._phases = phases
        self._slot = -1

    def claim(self) -> None:
        """Take a slot for this worker process (in the pool initializer)."""
        with self._next.get_lock():
            self._slot = self._next.value
            self._next.value += 1
        base = 3 * self._slot
        self._cells[base] = os.getpid()
        self._cells[base + 1] = IDLE

    @property
    def claimed(self) -> int:
        """How many workers took a slot: got through their start."""
        return self._next.value

    @property
    def slot(self) -> int:
        """This worker's slot (0 to workers - 1), once claimed."""
        return self._slot

    def job_started(self, index: int) -> None:
        base = 3 * self._slot
        self._phases.set(index, RUNNING)
        self._cells[base + 2] = time.monotonic()
        self._cells[base + 1] = index

    def job_ended(self) -> None:
        base = 3 * self._slot
        self._phases.set(int(self._cells[base + 1]), ENDED)
        self._cells[base + 1] = IDLE

    def running(self) -> list[Running]:
        """The jobs running now, one per busy worker."""
        cells = self._cells[:]
        found = []
        for base in range(0, len(cells), 3):
            pid, index, since = cells[base : base + 3]
            if pid and index != IDLE:
                found.append(Running(int(pid), int(index), since))
        return found


class StopFlags:
    """One flag per job: raised, the job sees ``handle.cancelled``."""

    def __init__(self, context: BaseContext, jobs: int):
        self._flags = context.Array("b", max(jobs, 1), lock=False)

    def raise_flag(self, index: int) -> None:
        self._flags[index] = 1

    def lower(self, index: int) -> None:
        self._flags[index] = 0

    def raise_all(self) -> None:
        self._flags[:] = [1] * len(self._flags)

    def is_raised(self, index: int) -> bool:
        return bool(self._flags[index])
