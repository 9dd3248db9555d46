"""What the workers of our own pools run: their initializer and ``run_batch``.

Kept apart from ``pool.py`` so that a worker (and the forkserver that starts
workers, which imports this module up front) imports the worker side only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

# The handler as set, where signal.getsignal() makes it an enum member at
# ~3 us a call (CPython's C module behind ``signal``).
from _signal import getsignal

from ..board import Roster, StopFlags
from ..channel import PipeEnd
from ..worker import Job, JobFunction, init_process, run_job


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


# What a job may change in its worker that the next job would inherit: the
# working directory, the environment, and the handlers of the signals the
# engine relies on (SIGINT ignored, SIGTERM to terminate). Modules it imported
# stay. Taken once a batch, compared after each job: about 1.5 us a job.
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _process_state() -> tuple:
    # os.environ._data: the raw bytes mapping, copied in ~0.2 us where
    # copying os.environ itself decodes every entry (~15 us).
    return (
        os.getcwd(),
        os.environ._data.copy(),  # type: ignore[attr-defined]
        [getsignal(s) for s in _SIGNALS],
    )


def _restore(state: tuple) -> None:
    cwd, environ, handlers = state
    if os.getcwd() != cwd:
        os.chdir(cwd)
    if os.environ._data != environ:  # type: ignore[attr-defined]
        decode = os.fsdecode
        os.environ.clear()
        os.environ.update({decode(k): decode(v) for k, v in environ.items()})
    for number, handler in zip(_SIGNALS, handlers, strict=True):
        if getsignal(number) != handler:
            signal.signal(number, handler)


WireJob = tuple[int, str, tuple[str, ...]]
"""A job as a batch carries it: index, data id, earlier failures. Plain
tuples: a namedtuple costs ~2 us more a job to pickle and unpickle."""


def run_batch(batch: tuple[WireJob, ...]) -> tuple[list[tuple], float]:
    """In a worker: run the batch's jobs (with the function this worker was
    given once) one after another, each in the working directory,
    environment and signal handlers the worker had before it. Returns the
    outcomes of those that ran, as plain tuples (``Outcome._make`` makes
    them whole), and the seconds they took. A job that raises what is not
    an Exception ends the batch: alone, it raises (as a job of its own
    would); later in a batch, it runs again alone."""
    start = time.perf_counter()
    outcomes = []
    state = _process_state()
    for index, data_id, earlier in batch:
        try:
            outcomes.append(tuple(run_job(Job(index, data_id, None, earlier))))
        except BaseException:
            if not outcomes:
                raise
            break
        finally:
            _restore(state)
    return outcomes, time.perf_counter() - start
