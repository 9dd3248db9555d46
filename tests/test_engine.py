"""The engine with real worker processes (default start method and spawn)."""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import re
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from preload import ExecutorPreloadHandle, PreloadState, PreloadStatus
from preload.errors import RemoteError, RemoteTraceback

import jobs
from conftest import wait_until

S = PreloadStatus
IDS = ("tt-data/tinky-winky.nc", "tt-data/dipsy.zarr", "tt-data/laa-laa.tiff")


# A caller's process pool as it should be made: fork in a process with
# threads may deadlock (Python 3.12+ warns).
FORKSERVER = multiprocessing.get_context("forkserver")


def statuses(handle):
    return [s.status for s in handle.states]


def run(data_ids, function, mp_context=None, **kwargs):
    kwargs.setdefault("silent", True)
    return ExecutorPreloadHandle(data_ids, function, mp_context=mp_context, **kwargs)


def test_blocking_call_completes_every_job(mp_context):
    handle = run(IDS, jobs.ticks, mp_context)
    assert handle.done
    assert handle.states == [PreloadState(i, S.completed, 1.0, "Done.") for i in IDS]


def test_failure_keeps_exception_and_worker_traceback(mp_context):
    handle = run(("ok", "bad"), _by_id, mp_context, outcomes={"bad": jobs.fail})
    ok, bad = handle.states
    assert ok.status is S.completed
    assert bad.status is S.failed
    assert bad.message == "about to fail"
    assert isinstance(bad.exception, ValueError)
    assert str(bad.exception) == "cannot preload bad"
    cause = bad.exception.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in fail" in cause.text and "ValueError: cannot preload bad" in cause.text


def _by_id(handle, data_id, outcomes):
    outcomes.get(data_id, jobs.ticks)(handle, data_id)


def test_exception_that_cannot_be_pickled_gets_a_stand_in(mp_context):
    handle = run(("a",), jobs.fail_unpicklable, mp_context)
    error = handle.get_state("a").exception
    assert isinstance(error, RemoteError)
    assert error.type_name == "LockedError"
    assert str(error) == "LockedError: locked a"
    assert "fail_unpicklable" in error.traceback_text


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"to_id": "nope", "progress": 0.5}, "'nope' is not a data id"),
        ({"progress": 1.5}, r"progress must be in \[0, 1\], got 1.5"),
        ({"progress": math.nan}, "got nan"),
        ({"progress": -0.1}, "got -0.1"),
        ({"progress": 1.000001}, "got 1.000001"),
        ({"status": "started"}, "status must be a PreloadStatus"),
        ({"progress": True}, "progress must be a number, got True"),
        ({"progress": "0.5"}, "progress must be a number, got '0.5'"),
        ({"message": 3}, "message must be a str or None, got 3"),
        ({"exception": "bad"}, "exception must be an exception or None, got 'bad'"),
    ],
)
def test_bad_notify_in_a_worker_fails_the_job(fields, match):
    handle = run(("a", "b"), jobs.notify, **fields)
    for state in handle.states:
        assert state.status is S.failed
        assert isinstance(state.exception, (TypeError, ValueError))
        assert re.search(match, str(state.exception))


def test_a_state_that_cannot_be_pickled_fails_its_job():
    with run(("a",), jobs.notify_a_lock, blocking=False) as handle:
        assert handle.wait(10), "the job waits for a message that was never sent"
    state = handle.get_state("a")
    assert state.status is S.failed
    assert isinstance(state.exception, TypeError)
    assert "message must be a str or None, got <unlocked _thread.lock" in str(
        state.exception
    )
    assert "notify_a_lock" in state.exception.__cause__.text


def test_a_state_that_fails_to_send_fails_its_job_without_hanging(mp_context):
    with run(("a", "b"), jobs.notify_unsendable, mp_context, blocking=False) as handle:
        assert handle.wait(10), "a job waits for a message that was never sent"
    for state in handle.states:
        assert state.status is S.failed
        assert state.message == "before"
        assert isinstance(state.exception, RuntimeError)
        assert str(state.exception).startswith(
            f"a state reported for {state.data_id!r} could not be sent to the parent:"
        )
        assert "OSError: the channel refused it" in str(state.exception)


def test_progress_a_rounding_error_past_one_is_clamped(mp_context):
    handle = run(("a",), jobs.progress_sums_to_one, mp_context)
    assert handle.get_state("a") == PreloadState("a", S.completed, 1.0)


def test_every_message_is_applied_before_the_final_status(mp_context):
    handle = run(("a", "b"), jobs.many_messages, mp_context, n=300)
    for state in handle.states:
        assert state == PreloadState(state.data_id, S.completed, 1.0, "m299")


@pytest.mark.slow
def test_400_jobs_that_return_at_once_each_get_their_own_outcome():
    ids = [f"id-{i:03d}" for i in range(400)]
    handle = run(ids, jobs.instant)
    for state in handle.states:
        if int(state.data_id[-1]) % 2:
            assert state.status is S.failed, state
            assert str(state.exception) == f"odd {state.data_id}"
        else:
            assert state.status is S.completed, state
            assert state.exception is None


def test_non_blocking_call_returns_before_jobs_end(mp_context, tmp_path):
    with run(IDS, jobs.gate, mp_context, blocking=False, path=str(tmp_path)) as handle:
        assert not handle.done
        assert wait_until(lambda: S.started in statuses(handle))
        assert not handle.wait(0.01)
        Path(tmp_path, "open").touch()
        assert handle.wait(30)
        assert statuses(handle) == [S.completed] * 3


def test_cancel_stops_running_and_queued_jobs(mp_context, tmp_path):
    ids = ("run", "next", "queued-1", "queued-2")
    handle = run(
        ids, jobs.gate, mp_context, blocking=False, max_workers=1, path=str(tmp_path)
    )
    with handle:
        assert wait_until(lambda: handle.get_state("run").status is S.started)
        handle.cancel()
        assert handle.cancelled
        # Queued jobs are cancelled when cancel() returns.
        assert handle.get_state("queued-2").status is S.cancelled
        assert handle.wait(30)
        # The running job saw `cancelled` and returned: CANCELLED, not COMPLETED.
        assert statuses(handle) == [S.cancelled] * 4
        assert not Path(tmp_path, "started-queued-2").exists()


def test_close_terminates_jobs_that_ignore_cancel(tmp_path):
    handle = run(
        ("a", "b"), jobs.stubborn, blocking=False, cancel_grace=0.2, path=str(tmp_path)
    )
    assert wait_until(lambda: Path(tmp_path, "child-b").exists(), 30)
    assert wait_until(lambda: Path(tmp_path, "child-a").exists(), 30)
    children = [int(Path(tmp_path, f"child-{i}").read_text()) for i in "ab"]
    handle.close()
    assert statuses(handle) == [S.cancelled, S.cancelled]
    for pid in children:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    handle.close()  # idempotent


def test_close_cancels_cooperative_jobs(tmp_path):
    handle = run(IDS, jobs.gate, blocking=False, path=str(tmp_path))
    assert wait_until(lambda: S.started in statuses(handle))
    handle.close()
    assert statuses(handle) == [S.cancelled] * 3


def test_subclass_method_runs_in_worker_processes(mp_context):
    handle = jobs.PrefixHandle(IDS, "zenodo", silent=True, mp_context=mp_context)
    pids = set()
    for state in handle.states:
        assert state.status is S.completed
        assert state.progress == 0.5
        prefix, data_id, pid = state.message.split(":")
        assert (prefix, data_id) == ("zenodo", state.data_id)
        pids.add(int(pid))
    assert psutil.Process().pid not in pids


def test_the_same_function_runs_on_threads():
    with ThreadPoolExecutor(2) as executor:
        handle = run(IDS, jobs.ticks, executor=executor)
        assert statuses(handle) == [S.completed] * 3
        # The caller's executor is not shut down.
        assert executor.submit(sum, [1, 2]).result() == 3
        handle = run(IDS, jobs.fail, executor=executor)
        assert statuses(handle) == [S.failed] * 3
        assert handle.get_state(IDS[0]).exception.__traceback__ is not None


def test_subclass_on_threads_uses_the_handle_itself():
    with ThreadPoolExecutor(2) as executor:
        handle = jobs.PrefixHandle(IDS, "t", silent=True, executor=executor)
    assert statuses(handle) == [S.completed] * 3


def test_caller_process_pool_is_used_and_not_shut_down():
    with ProcessPoolExecutor(2, mp_context=FORKSERVER) as executor:
        handle = run(IDS, jobs.ticks, executor=executor)
        assert statuses(handle) == [S.completed] * 3
        assert executor.submit(sum, [1, 2]).result() == 3


def test_handle_api_snapshots_and_text(tmp_path):
    with run(IDS, jobs.gate, blocking=False, path=str(tmp_path)) as handle:
        snapshot = handle.get_state(IDS[0])
        snapshot.message = "changed"
        assert handle.get_state(IDS[0]).message is None
        with pytest.raises(KeyError):
            handle.get_state("nope")
        handle.notify(PreloadState(IDS[2], message="from the parent"))
        assert wait_until(lambda: handle.get_state(IDS[2]).message is not None)
        with pytest.raises(ValueError):
            handle.notify(PreloadState("nope", message="x"))
        Path(tmp_path, "open").touch()
        assert handle.wait(30)
    assert [s.data_id for s in handle.states] == list(IDS)
    text = str(handle)
    assert text == repr(handle)
    assert text.splitlines()[0].split() == [
        "Data",
        "ID",
        "Status",
        "Progress",
        "Message",
        "Exception",
    ]
    assert "COMPLETED" in text
    assert handle._repr_html_().startswith("<table>")


def test_status_lines_print_once_per_status_change(capsys):
    run(IDS, jobs.ticks, silent=False)
    lines = capsys.readouterr().out.splitlines()
    # Then the final table (a header, a rule, a row per id) and a summary.
    assert len(lines) == 2 * len(IDS) + 2 + len(IDS) + 1
    lines = lines[: 2 * len(IDS)]
    assert sorted(line.split()[1:] for line in lines) == sorted(
        [[i, status] for i in IDS for status in ("STARTED", "COMPLETED")]
    )


def test_handle_copy_in_a_worker_needs_a_job():
    copy = pickle.loads(pickle.dumps(jobs.PrefixHandle((), "p", silent=True)))
    assert not copy.cancelled
    with pytest.raises(RuntimeError, match="outside a job"):
        copy.notify(PreloadState("a"))


def test_a_final_status_never_changes_later_messages_still_apply():
    # As in xcube: an update that would change a final status is dropped whole;
    # one without a status still applies.
    handle = run(("a",), jobs.cancel_then_more)
    assert handle.states == [PreloadState("a", S.cancelled, 1.0, "too late")]


def test_notified_exceptions_reach_the_parent():
    handle = run(("a",), jobs.report_error)
    state = handle.get_state("a")
    assert state.status is S.completed
    assert type(state.exception).__name__ == "LocalError"
    assert str(state.exception) == "reported"


class BrokenStream:
    def write(self, text):
        raise OSError("stdout is gone")

    def flush(self):
        pass


def test_a_broken_display_does_not_stop_the_run(monkeypatch, caplog):
    monkeypatch.setattr("sys.stdout", BrokenStream())
    handle = run(IDS, jobs.ticks, silent=False)
    assert statuses(handle) == [S.completed] * 3
    assert "the display failed; nothing more is shown" in caplog.text


WHERE_IMPORTED = """
import jobs
from preload import ExecutorPreloadHandle

if __name__ == "__main__":
    for start_method in (None, "spawn"):
        handle = ExecutorPreloadHandle(
            ["a"], jobs.where_imported, silent=True, mp_context=start_method
        )
        print(handle.get_state("a").message)
"""


def test_forkserver_imports_the_function_module_for_its_workers(tmp_path):
    # A fresh interpreter: its forkserver starts with this run.
    script = tmp_path / "where.py"
    script.write_text(WHERE_IMPORTED)
    tests_dir = str(Path(__file__).parent)
    # On PYTHONPATH: the forkserver does not take sys.path changes made at runtime.
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([tests_dir, *sys.path])},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["inherited", "here"]


def test_a_jobs_helper_thread_belongs_to_the_job(tmp_path):
    with run(("a",), jobs.helper_thread, blocking=False) as handle:
        assert wait_until(lambda: handle.get_state("a").message is not None)
        assert handle.get_state("a").message == "helper found its job: True"
        handle.cancel()
        assert handle.wait(10)
    assert handle.get_state("a") == PreloadState(
        "a", S.cancelled, message="helper saw cancel"
    )


def test_a_subclass_download_thread_reports_and_sees_cancel():
    handle = jobs.DownloadHandle(("a", "b"), silent=True, blocking=False)
    with handle:
        assert wait_until(
            lambda: [s.message for s in handle.states] == ["downloading"] * 2
        )
        handle.cancel()
        assert handle.wait(10)
    assert handle.states == [
        PreloadState(i, S.cancelled, message="download stopped") for i in "ab"
    ]


def test_a_big_parameter_goes_to_each_worker_once(tmp_path):
    payload = b"x" * 5_000_000
    ids = ("a", "b", "c")
    with run(
        ids,
        jobs.gate_with_payload,
        blocking=False,
        max_workers=1,
        path=str(tmp_path),
        payload=payload,
    ) as handle:
        assert wait_until(lambda: handle.get_state("a").message is not None)
        # The batches handed to the pool carry each job's index, data id and
        # earlier failures, not the function.
        pool = handle._ExecutorPreloadHandle__run.engine._runner._pool
        batches = [item.args[0] for item in pool._pending_work_items.values()]
        assert all(len(job) == 3 for batch in batches for job in batch)
        sent = [data_id for batch in batches for _, data_id, _ in batch]
        assert sent and sent == list(ids)[: len(sent)]
        assert all(len(pickle.dumps(batch)) < 1000 for batch in batches)
        Path(tmp_path, "open").touch()
        assert handle.wait(30)
    assert [s.message for s in handle.states] == ["5000000 bytes"] * 3
    assert statuses(handle) == [S.completed] * 3
