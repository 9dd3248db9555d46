"""Pool hardening: a fast cancel, bounded reruns, a bounded close, process
groups, and a memory limit per job."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from preload import ExecutorPreloadHandle, PreloadStatus
from preload.errors import ResultLostError

import jobs
from conftest import gone, wait_until

S = PreloadStatus


def run(data_ids, function, **kwargs):
    return ExecutorPreloadHandle(data_ids, function, silent=True, **kwargs)


@pytest.mark.parametrize("started", [2, 0], ids=["two-running", "at-once"])
def test_cancel_returns_at_once_with_queued_jobs_cancelled(tmp_path, started):
    ids = ["a", "b", "c", "d"]
    with run(
        ids, jobs.gate, blocking=False, max_workers=2, path=str(tmp_path)
    ) as handle:
        assert wait_until(lambda: len(list(tmp_path.glob("started-*"))) >= started)
        t0 = time.perf_counter()
        handle.cancel()
        took = time.perf_counter() - t0
        queued = [
            s
            for s in handle.states
            if not Path(tmp_path, f"started-{s.data_id}").exists()
        ]
        assert len(queued) >= len(ids) - 2
        assert [s.status for s in queued] == [S.cancelled] * len(queued)
        assert took < 0.1, f"cancel() took {took * 1e3:.0f} ms"
        assert handle.wait(5)
        assert [s.status for s in handle.states] == [S.cancelled] * 4


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["unpicklable", "close-fds"])
def test_a_job_that_breaks_its_pool_after_it_ended_fails_alone(tmp_path, how):
    handle = run(
        ("guilty", "innocent"),
        jobs.pool_breaker,
        blocking=False,
        max_workers=2,
        path=str(tmp_path),
        how=how,
    )
    try:
        assert handle.wait(30), handle.states
        guilty, innocent = handle.states
        assert guilty.status is S.failed
        assert isinstance(guilty.exception, ResultLostError)
        assert "could not be received (3 attempts)" in str(guilty.exception)
        if how == "unpicklable":  # why, from the parent's unpickling
            assert "TypeError" in str(guilty.exception)
        assert innocent.status is S.completed
        assert len(list(tmp_path.glob("pid-guilty-*"))) == 3
    finally:
        handle.close()


@pytest.mark.timeout(60)
def test_close_terminates_a_job_that_reported_its_end_but_runs_on(tmp_path):
    handle = run(
        ("a",),
        jobs.done_but_running,
        blocking=False,
        cancel_grace=0.3,
        path=str(tmp_path),
    )
    assert wait_until(lambda: Path(tmp_path, "started-a").exists(), 30)
    assert wait_until(lambda: handle.get_state("a").status is S.completed)
    worker = int(Path(tmp_path, "started-a").read_text())
    closer = threading.Thread(target=handle.close)
    t0 = time.monotonic()
    closer.start()
    closer.join(5)
    assert not closer.is_alive(), "close() waits for a job the table says ended"
    assert time.monotonic() - t0 < 0.3 + 2
    assert gone([worker])
    assert handle.get_state("a").status is S.completed


def test_stopping_a_job_ends_the_grandchildren_it_detached(tmp_path):
    grandchild = None
    try:
        with run(
            ("a",),
            jobs.detached_grandchild,
            blocking=False,
            cancel_grace=0.2,
            path=str(tmp_path),
        ) as handle:
            path = Path(tmp_path, "grandchild-a")
            assert wait_until(path.exists, 30)
            grandchild = int(path.read_text())
            assert grandchild not in {
                p.pid for p in psutil.Process().children(recursive=True)
            }
            handle.cancel()
            assert handle.wait(5)
        assert handle.get_state("a").status is S.cancelled
        assert gone([grandchild], timeout=2), "a detached grandchild survived"
    finally:
        if grandchild is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(grandchild, signal.SIGKILL)


def test_a_job_past_its_memory_limit_fails_and_the_others_run_on(tmp_path):
    handle = run(("hog", "light"), jobs.hog, max_workers=2, max_memory="200MB")
    hog, light = handle.states
    assert hog.status is S.failed
    assert isinstance(hog.exception, MemoryError)
    text = str(hog.exception)
    assert "200 MB" in text and "max_memory" in text, text
    peak = float(text.split("peak ")[1].split(" MB")[0])
    assert 200 < peak < 400
    assert light.status is S.completed


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1000, 1000),
        ("500MB", 500_000_000),
        ("500 mb", 500_000_000),
        ("2GiB", 2 << 30),
        ("1.5G", 1_500_000_000),
        ("64Ki", 64 << 10),
        ("123", 123),
        (None, None),
    ],
)
def test_memory_sizes(value, expected):
    from preload.validation import check_memory

    assert check_memory(value) == expected


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        ("2 lots", ValueError, "such as '2GiB'"),
        ("", ValueError, "such as '2GiB'"),
        (0, ValueError, "> 0"),
        ("0.1B", ValueError, "> 0"),
        (-5, ValueError, "> 0"),
        (True, TypeError, "max_memory"),
        ([1], TypeError, "max_memory"),
    ],
)
def test_a_wrong_memory_limit_is_refused_before_any_process_starts(value, error, words):
    with pytest.raises(error, match=words):
        ExecutorPreloadHandle(("a",), jobs.ticks, silent=True, max_memory=value)


def test_a_memory_limit_needs_our_own_pool():
    from concurrent.futures import ThreadPoolExecutor

    with (
        ThreadPoolExecutor(1) as executor,
        pytest.raises(ValueError, match="max_memory needs the handle's own"),
    ):
        ExecutorPreloadHandle(
            ("a",), jobs.ticks, executor=executor, silent=True, max_memory="1GiB"
        )


def test_a_crash_ends_the_children_of_the_jobs_its_pool_lost(tmp_path):
    # CPython terminates the other workers of a broken pool, not their
    # children: those of a job that ran there must not live on.
    with run(
        ("busy", "crash"),
        jobs.child_beside_a_crash,
        blocking=False,
        max_workers=2,
        path=str(tmp_path),
    ) as handle:
        assert wait_until(lambda: handle.get_state("crash").status.is_final, 30)
        child = int(Path(tmp_path, "child-busy").read_text())
        assert gone([child]), "the lost job's child outlived its worker"
        Path(tmp_path, "open").touch()
        assert handle.wait(30)
    assert handle.get_state("busy").status is S.completed
    assert handle.get_state("crash").status is S.failed


NO_MAIN_GUARD = """
from preload import ExecutorPreloadHandle, PreloadStatus

def job(handle, data_id):
    pass

handle = ExecutorPreloadHandle(
    [f"id{i}" for i in range(200)], job, silent=True, max_workers=2
)
states = handle.states
assert all(s.status is PreloadStatus.failed for s in states), states
print(states[0].exception)
"""


def test_a_script_without_the_main_guard_fails_its_jobs_at_once(tmp_path):
    # Each worker runs the script's top level again, which starts a preload:
    # multiprocessing refuses, the worker dies as it starts. Two pools that
    # die so end the run, instead of a fresh pool (and a traceback) per job.
    script = tmp_path / "noguard.py"
    script.write_text(NO_MAIN_GUARD)
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 0, result.stderr
    assert "died as they started" in result.stdout
    assert 'if __name__ == "__main__":' in result.stdout
    assert result.stderr.count("An attempt has been made") <= 4
