"""Retries of transient faults (``retries``, ``retry_on``, ``retry_delay``)."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from preload import ExecutorPreloadHandle, PreloadStatus
from preload.errors import WorkerDiedError
from preload.retry import Retry

import retry_jobs
from conftest import wait_until
from tests_support import preload

S = PreloadStatus


def attempts(path, data_id):
    return len(list(Path(path).glob(f"attempt-{data_id}-*")))


def run(data_ids, function, **kwargs):
    kwargs.setdefault("silent", True)
    return ExecutorPreloadHandle(data_ids, function, **kwargs)


def test_a_transient_fault_is_retried_until_it_works(tmp_path, executor):
    handle = run(
        ("a", "b"),
        retry_jobs.flaky,
        executor=executor,
        path=str(tmp_path),
        fails=2,
        retries=2,
        retry_delay=0.01,
    )
    assert [s.status for s in handle.states] == [S.completed, S.completed]
    assert handle.get_state("a").message == "Done."
    assert attempts(tmp_path, "a") == attempts(tmp_path, "b") == 3


def test_the_last_exception_keeps_the_earlier_ones_in_its_notes(tmp_path, executor):
    handle = run(
        ("a",),
        retry_jobs.flaky,
        executor=executor,
        path=str(tmp_path),
        fails=9,
        retries=2,
        retry_delay=0,
    )
    state = handle.get_state("a")
    assert state.status is S.failed
    assert isinstance(state.exception, ConnectionError)
    assert str(state.exception) == "a refused attempt 3"
    assert state.exception.__notes__ == [
        "attempt 1 of 3 failed: ConnectionError: a refused attempt 1",
        "attempt 2 of 3 failed: ConnectionError: a refused attempt 2",
    ]
    assert attempts(tmp_path, "a") == 3


def test_a_value_error_is_a_bug_retried_only_when_asked(tmp_path, executor):
    common = dict(executor=executor, fails=1, error="ValueError", retries=3)
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    handle = run(("a",), retry_jobs.flaky, path=str(tmp_path / "1"), **common)
    assert handle.get_state("a").status is S.failed
    assert not hasattr(handle.get_state("a").exception, "__notes__")
    assert attempts(tmp_path / "1", "a") == 1
    asked = run(
        ("a",),
        retry_jobs.flaky,
        path=str(tmp_path / "2"),
        retry_on=ValueError,
        retry_delay=0,
        **common,
    )
    assert asked.get_state("a").status is S.completed
    assert attempts(tmp_path / "2", "a") == 2


@pytest.mark.parametrize("stop", ["cancel", "close"])
def test_the_wait_says_so_and_a_cancel_ends_it_at_once(tmp_path, executor, stop):
    handle = run(
        ("a",),
        retry_jobs.flaky,
        executor=executor,
        blocking=False,
        cancel_grace=20,
        path=str(tmp_path),
        fails=9,
        retries=3,
        retry_delay=30,
    )
    try:
        assert wait_until(
            lambda: (handle.get_state("a").message or "").startswith("retry"), 10
        )
        message = handle.get_state("a").message
        # 30 s times a jitter factor in [0.75, 1.25].
        assert re.fullmatch(
            r"retry 1 of 3 in (2[2-9]|3[0-7])\.\d s: ConnectionError: a refused"
            r" attempt 1",
            message,
        ), message
        assert handle.get_state("a").status is S.started
        started = time.monotonic()
        getattr(handle, stop)()
        assert handle.wait(5)
        assert time.monotonic() - started < 2  # not the grace, not the delay
    finally:
        handle.close()
    assert handle.get_state("a").status is S.cancelled
    assert attempts(tmp_path, "a") == 1


def test_a_job_timeout_ends_the_wait_and_is_not_retried_by_default(tmp_path):
    # TimeoutError is an OSError: raised by the job it is retried (default
    # retry_on); a job stopped for its job_timeout is not.
    started = time.monotonic()
    handle = run(
        ("a",),
        retry_jobs.flaky,
        job_timeout=0.5,
        path=str(tmp_path),
        fails=9,
        retries=3,
        retry_delay=30,
    )
    assert time.monotonic() - started < 5
    state = handle.get_state("a")
    assert state.status is S.failed
    assert isinstance(state.exception, TimeoutError)
    assert str(state.exception) == "'a' exceeded its timeout of 0.5 s"
    assert attempts(tmp_path, "a") == 1


def test_a_worker_that_died_is_retried_only_when_asked(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "2").mkdir()
    handle = run(("a",), retry_jobs.dies_once, path=str(tmp_path / "1"), retries=2)
    assert isinstance(handle.get_state("a").exception, WorkerDiedError)
    assert attempts(tmp_path / "1", "a") == 1
    asked = run(
        ("a",),
        retry_jobs.dies_once,
        path=str(tmp_path / "2"),
        retries=2,
        retry_on=(OSError, WorkerDiedError),
        retry_delay=0.01,
    )
    assert asked.get_state("a").status is S.completed
    assert re.fullmatch(
        r"retry 1 of 2: WorkerDiedError: worker process \d+ exited with code 3"
        " while running it",
        asked.get_state("a").message,
    )
    assert attempts(tmp_path / "2", "a") == 2


def test_a_worker_that_dies_every_time_fails_with_the_earlier_deaths(tmp_path):
    handle = run(
        ("a",),
        retry_jobs.dies,
        path=str(tmp_path),
        retries=2,
        retry_on=WorkerDiedError,
        retry_delay=0.01,
    )
    state = handle.get_state("a")
    assert isinstance(state.exception, WorkerDiedError)
    assert len(state.exception.__notes__) == 2
    assert state.exception.__notes__[1].startswith(
        "attempt 2 of 3 failed: WorkerDiedError: worker process"
    )
    assert attempts(tmp_path, "a") == 3


@pytest.mark.parametrize("cooperative", [True, False], ids=["stops", "terminated"])
def test_a_job_timeout_is_retried_when_timeout_error_is_named(tmp_path, cooperative):
    options = dict(job_timeout=0.3, cancel_grace=0.2, retries=1, retry_delay=0.01)
    handle = run(
        ("a", "b"),
        retry_jobs.hangs_once,
        path=str(tmp_path),
        cooperative=cooperative,
        retry_on=TimeoutError,
        **options,
    )
    assert [s.status for s in handle.states] == [S.completed, S.completed]
    assert handle.get_state("a").message.startswith(
        "retry 1 of 1: TimeoutError: 'a' exceeded its timeout of 0.3 s"
    )
    assert attempts(tmp_path, "a") == 2


def test_the_delay_doubles_with_jitter():
    retry = Retry(5, (OSError,), 1.0)
    for number, base in [(1, 1.0), (2, 2.0), (3, 4.0)]:
        waits = [retry.wait_before(number) for _ in range(200)]
        assert all(0.75 * base <= w <= 1.25 * base for w in waits)
        assert len(set(waits)) > 100


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"retries": -1}, ValueError, "retries must be >= 0, got -1"),
        ({"retries": 1.5}, TypeError, "retries must be an int"),
        ({"retries": True}, TypeError, "retries must be an int"),
        ({"retry_on": ValueError("x")}, TypeError, "retry_on must be an exception"),
        ({"retry_on": (OSError, 3)}, TypeError, "retry_on must be an exception"),
        ({"retry_on": KeyboardInterrupt}, TypeError, "subclasses of Exception"),
        ({"retry_on": [OSError]}, TypeError, "retry_on must be an exception"),
        ({"retry_delay": -1}, ValueError, "retry_delay must be a finite number"),
        ({"retry_delay": float("inf")}, ValueError, "retry_delay must be a finite"),
        ({"retry_delay": float("nan")}, ValueError, "retry_delay must be a finite"),
        ({"retry_delay": None}, TypeError, "retry_delay must be a number"),
    ],
)
def test_bad_retry_options_are_refused_before_anything_starts(kwargs, error, match):
    with pytest.raises(error, match=match):
        run(("a",), retry_jobs.flaky, path=".", fails=0, **kwargs)


def test_a_parameter_named_like_a_retry_option_is_refused():
    def preload_data(handle, data_id, retries=0):
        pass

    with pytest.raises(TypeError, match="'retries', which is an option"):
        run(("a",), preload_data)


MODULE = """
from pathlib import Path

def flaky(handle, data_id):
    done = len(list(Path(".").glob(f"try-{data_id}-*")))
    Path(f"try-{data_id}-{done}").touch()
    if done < 2:
        raise ConnectionError(f"refused {data_id}")
"""


@pytest.mark.parametrize("retries", ["2", "1"])
def test_the_command_retries(tmp_path, retries):
    (tmp_path / "flakyjobs.py").write_text(MODULE)
    result = preload(
        "run",
        "flakyjobs:flaky",
        "a",
        "--retries",
        retries,
        "--retry-delay",
        "0.01",
        "--json",
        "out.json",
        cwd=tmp_path,
    )
    [record] = [json.loads(line) for line in (tmp_path / "out.json").open()]
    if retries == "2":
        assert result.returncode == 0, result.stderr
        assert record["status"] == "completed"
    else:
        assert result.returncode == 1
        assert record["exception"] == "ConnectionError: refused a"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--retries", "-1"], "--retries: must be >= 0, got -1"),
        (["--retries", "x"], "--retries: expected a whole number"),
        (["--retry-delay", "-1"], "--retry-delay: must be >= 0, got -1"),
    ],
)
def test_the_command_refuses_bad_retry_options(tmp_path, args, error):
    (tmp_path / "flakyjobs.py").write_text(MODULE)
    result = preload("run", "flakyjobs:flaky", "a", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert error in result.stderr


def test_a_job_timeout_in_the_wait_counts_the_attempts_its_worker_made(tmp_path):
    # Attempt 2 fails at ~0.5 s; its wait (~1 s) outlasts the 0.9 s timeout.
    # The timeout is named in retry_on, but the two retries are used up.
    handle = run(
        ("a",),
        retry_jobs.flaky,
        job_timeout=0.9,
        path=str(tmp_path),
        fails=9,
        retries=2,
        retry_delay=0.5,
        retry_on=(OSError, TimeoutError),
    )
    state = handle.get_state("a")
    assert isinstance(state.exception, TimeoutError)
    assert state.exception.__notes__ == [
        "attempt 1 of 3 failed: ConnectionError: a refused attempt 1",
        "attempt 2 of 3 failed: ConnectionError: a refused attempt 2",
    ]
    assert attempts(tmp_path, "a") == 2


class FrozenError(OSError):
    def __setattr__(self, name, value):
        raise AttributeError(f"frozen: {name}")


def always_frozen(handle, data_id):
    raise FrozenError("refused")


def test_an_exception_that_refuses_notes_still_fails_its_job():
    with ThreadPoolExecutor(1) as pool:
        handle = run(("a",), always_frozen, executor=pool, retries=1, retry_delay=0)
    exc = handle.get_state("a").exception
    assert isinstance(exc, FrozenError) and str(exc) == "refused"
    assert Retry(2000, (OSError,), 1.0).wait_before(2000) > 1e19  # no overflow
