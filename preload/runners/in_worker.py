"""What the workers of our own pools run: their initializer and ``run_batch``.

Kept apart from ``pool.py`` so that a worker (and the forkserver that starts
workers, which imports this module up front) imports the worker side only.
"""

from __future__ import annotations

import contextlib
import os
import time

from ..board import Roster, StopFlags
from ..channel import PipeEnd
from ..worker import Job, JobFunction, Outcome, init_process, run_job


def init_worker(
    end: PipeEnd,
    roster: Roster,
    stops: StopFlags,
    parent_pid: int,
    parent_temp_dir: str | None,
    function: bytes | JobFunction,
) -> None:
    """Initializer of our pool's workers: a session of its own (its process
    group reaches what its jobs detach), then the worker's own setup, then
    the pipe of its slot."""
    with contextlib.suppress(PermissionError):  # a group leader already
        os.setsid()
    init_process(end, roster, stops, parent_pid, function, parent_temp_dir)
    end.use_slot(roster.slot)


def run_batch(jobs: tuple[Job, ...]) -> tuple[list[Outcome], float]:
    """In a worker: run the jobs (without their function, which this worker
    was given once) one after another. Returns
    the outcomes of those that ran and the seconds they took. A job that
    raises what is not an Exception ends the batch: alone, it raises (as a
    job of its own would); later in a batch, it runs again alone."""
    start = time.perf_counter()
    outcomes = []
    for job in jobs:
        try:
            outcomes.append(run_job(job))
        except BaseException:
            if not outcomes:
                raise
            break
    return outcomes, time.perf_counter() - start
