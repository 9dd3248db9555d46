"""A run releases itself once every job has ended, whoever calls close()."""

from __future__ import annotations

import threading

from preload import ExecutorPreloadHandle, PreloadState, PreloadStatus
from preload.display.base import Display
from preload.engine import Engine
from preload.limits import Limits
from preload.validation import pickle_job_function
from preload.worker import JobFunction

import jobs
from conftest import our_processes, wait_until

S = PreloadStatus


class InPlace(Display):
    """A display that updates in place (as the notebook panel does), recording
    which thread draws."""

    updates_in_place = True

    def __init__(self, table):
        super().__init__(table)
        self.draws: list[tuple[str, list]] = []

    def draw(self) -> None:
        statuses = [s.status for s in self.table.snapshot()]
        self.draws.append((threading.current_thread().name, statuses))


def start(ids, function, displays: list, **params) -> Engine:
    def make_display(table, running, cancel):
        displays.append(InPlace(table))
        return displays[-1]

    engine = Engine(ids, None, make_display)
    payload = pickle_job_function(JobFunction(function, params, bound=False))
    engine.start(payload, "token", 2, None, Limits(grace=3.0))
    return engine


def test_wait_returns_with_everything_released_and_the_final_state_drawn_here():
    displays: list[InPlace] = []
    engine = start(("a", "b"), jobs.ticks, displays, n=3)
    assert engine.wait(30)
    assert our_processes() == []
    assert [t.name for t in threading.enumerate() if t.name.startswith("preload")] == []
    # The last draw is this thread's, with the final states: a notebook
    # records it with the cell that waits, even if the run ended between cells.
    name, statuses = displays[0].draws[-1]
    assert name == threading.current_thread().name
    assert statuses == [S.completed, S.completed]


def test_an_update_after_the_release_is_applied_and_drawn():
    displays: list[InPlace] = []
    engine = start(("a",), jobs.ticks, displays, n=3)
    assert engine.wait(30)
    engine.notify(PreloadState("a", message="Cleaning up Finished."))
    engine.notify(PreloadState("a", status=S.failed, message="dropped whole"))
    assert engine.table.get("a") == PreloadState(
        "a", S.completed, 1.0, "Cleaning up Finished."
    )
    assert displays[0].draws[-1] == (threading.current_thread().name, [S.completed])
    engine.close(3.0)  # nothing left to do


def test_two_runs_at_once_stay_apart(tmp_path):
    # Runs share nothing: one's cancel, or a worker that dies in it, never
    # touches another open at the same time.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = ExecutorPreloadHandle(
        ["a1", "a2"], jobs.gate, blocking=False, silent=True, path=tmp_path / "a"
    )
    second = ExecutorPreloadHandle(
        ["exit-b", "b2"], jobs.exit_soon, blocking=False, silent=True,
        path=tmp_path / "b",
    )  # fmt: skip
    assert wait_until(lambda: len(list((tmp_path / "a").glob("started-*"))) == 2)
    assert wait_until(lambda: second.get_state("exit-b").status is S.failed)
    second.cancel()
    assert second.wait(10)
    assert second.get_state("b2").status is S.cancelled
    assert not first.cancelled and first.get_state("a1").status is S.started
    (tmp_path / "a" / "open").touch()
    assert first.wait(10)
    assert [s.status for s in first.states] == [S.completed, S.completed]


def test_a_job_leaves_its_worker_as_it_found_it():
    # One worker runs all three: the job after "change" finds the folder, the
    # environment and the SIGTERM handler the one before it found.
    handle = ExecutorPreloadHandle(
        ["before", "change", "after"],
        jobs.changes_its_worker,
        silent=True,
        max_workers=1,
    )
    before, change, after = handle.states
    assert change.status is S.completed
    assert after.message == before.message
    assert "'1'" not in after.message
