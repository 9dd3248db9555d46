"""The same preload functions on a dask.distributed cluster (a LocalCluster of
two worker processes, one thread each): states, cancel, timeouts, crashes,
a worker lost mid-run, and a cluster left as it was found."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

pytest.importorskip("distributed")

import distributed

from preload import ExecutorPreloadHandle, PreloadState, PreloadStatus
from preload.errors import RemoteTraceback, WorkerDiedError
from preload.runners import dask_worker

import jobs
from conftest import gone, wait_until
from tests_support import preload

S = PreloadStatus
IDS = ("tt-data/tinky-winky.nc", "tt-data/dipsy.zarr", "tt-data/laa-laa.tiff")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster) as client:
        yield client


def run(data_ids, function, client, **kwargs):
    kwargs.setdefault("silent", True)
    return ExecutorPreloadHandle(data_ids, function, executor=client, **kwargs)


def statuses(handle):
    return [s.status for s in handle.states]


def worker_pids(client) -> set[int]:
    return set(client.run(os.getpid).values())


def job_processes(client) -> list[int]:
    """Processes under the cluster's workers: job processes, and theirs."""
    found = []
    for pid in worker_pids(client):
        found += [p.pid for p in psutil.Process(pid).children(recursive=True)]
    return found


def test_the_seed_scenario_ends_as_on_processes(client):
    workers = worker_pids(client)
    handle = run(IDS, jobs.ticks, client)
    assert handle.done
    assert handle.states == [PreloadState(i, S.completed, 1.0, "Done.") for i in IDS]
    assert worker_pids(client) == workers


def test_a_window_of_jobs_at_a_time(client, tmp_path, monkeypatch):
    from preload.runners import dask as dask_runner

    monkeypatch.setattr(dask_runner, "WINDOW", 2)
    ids = [f"j{i}" for i in range(6)]
    handle = run(ids, jobs.ticks, client)
    assert statuses(handle) == [S.completed] * 6
    # Cancelled with jobs never submitted: they end CANCELLED at once.
    handle = run(ids, jobs.gate, client, blocking=False, path=str(tmp_path))
    with handle:
        assert wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, 30)
        handle.cancel()
        assert {handle.get_state(i).status for i in ids[2:]} == {S.cancelled}
        assert handle.wait(10)
        assert statuses(handle) == [S.cancelled] * 6


def test_failure_keeps_exception_and_job_traceback(client):
    handle = run(("bad",), jobs.fail, client)
    [bad] = handle.states
    assert (bad.status, bad.message) == (S.failed, "about to fail")
    assert isinstance(bad.exception, ValueError)
    assert str(bad.exception) == "cannot preload bad"
    assert isinstance(bad.exception.__cause__, RemoteTraceback)
    assert "in fail" in bad.exception.__cause__.text


def test_many_messages_arrive_in_order_before_the_final_status(client):
    handle = run(("a", "b"), jobs.many_messages, client, n=300)
    for state in handle.states:
        assert (state.status, state.progress, state.message) == (
            S.completed,
            1.0,
            "m299",
        )


def test_cooperative_cancel(client, tmp_path):
    ids = ("a", "b", "c", "d")
    handle = run(ids, jobs.gate, client, blocking=False, path=str(tmp_path))
    with handle:
        assert wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, 30)
        running = {p.name.removeprefix("started-") for p in tmp_path.glob("started-*")}
        queued = set(ids) - running
        state = handle.get_state
        assert wait_until(lambda: all(state(i).status is S.started for i in running))
        began = time.monotonic()
        handle.cancel()
        assert handle.cancelled
        # Jobs not begun are CANCELLED when cancel() returns.
        assert {state(i).status for i in queued} == {S.cancelled}
        assert handle.wait(10)
        # Running jobs saw `cancelled` (through their task's pipe) and returned.
        assert time.monotonic() - began < 2
        assert statuses(handle) == [S.cancelled] * 4
        assert len(list(tmp_path.glob("started-*"))) == 2


def test_forced_cancel_after_the_grace_keeps_the_workers(client, tmp_path):
    workers = worker_pids(client)
    handle = run(
        ("a", "b"),
        jobs.stubborn,
        client,
        blocking=False,
        cancel_grace=0.3,
        path=str(tmp_path),
    )
    with handle:
        assert wait_until(lambda: len(list(tmp_path.glob("child-*"))) == 2, 30)
        children = [int(p.read_text()) for p in tmp_path.glob("child-*")]
        jobs_ = [int(p.read_text()) for p in tmp_path.glob("started-*")]
        handle.cancel()
        assert not handle.done
        assert handle.wait(0.3 + 5)
        assert statuses(handle) == [S.cancelled] * 2
        assert gone(children + jobs_), "a job or its child survived"
    assert worker_pids(client) == workers


def test_timeouts_cooperative_and_forced(client, tmp_path):
    roles = {"slow": "steady:5", "stuck": "stubborn"}
    handle = run(
        list(roles),
        jobs.mixed,
        client,
        job_timeout=0.5,
        cancel_grace=0.3,
        path=str(tmp_path),
        roles=roles,
    )
    slow, stuck = handle.states
    assert slow.status is S.failed
    assert str(slow.exception) == "'slow' exceeded its timeout of 0.5 s"
    assert stuck.status is S.failed
    assert isinstance(stuck.exception, TimeoutError)
    assert "terminated 0.3 s later (cancel_grace)" in str(stuck.exception)
    assert gone([int(Path(tmp_path, "child-stuck").read_text())])


@pytest.mark.parametrize(
    ("how", "words"),
    [("exit", "exited with code 3"), ("sigkill", "was killed by SIGKILL")],
)
def test_a_job_that_dies_fails_alone_naming_host_and_pid(client, tmp_path, how, words):
    workers = worker_pids(client)
    roles = {"crash": f"crash:{how}", "steady": "steady:0.3"}
    handle = run(list(roles), jobs.mixed, client, path=str(tmp_path), roles=roles)
    crash, steady = handle.states
    assert crash.status is S.failed
    assert isinstance(crash.exception, WorkerDiedError)
    [pid] = [p.name.rsplit("-", 1)[1] for p in tmp_path.glob("pid-crash-*")]
    text = str(crash.exception)
    assert f"job process {pid} {words} on {os.uname().nodename}" in text, text
    assert "dask worker tcp://" in text
    assert steady.status is S.completed
    assert worker_pids(client) == workers


def test_retries_on_the_cluster(client, tmp_path):
    ids = ("flaky", "dies")
    handle = run(
        ids,
        _retry_roles,
        client,
        path=str(tmp_path),
        retries=2,
        retry_on=(ConnectionError, WorkerDiedError),
        retry_delay=0.01,
    )
    flaky, dies = handle.states
    # Retried inside its process (it raised), then in a fresh one (it died).
    assert (flaky.status, flaky.message) == (S.completed, "Done.")
    assert dies.status is S.completed
    assert len(list(tmp_path.glob("attempt-dies-*"))) == 2


def _retry_roles(handle, data_id, path):
    import retry_jobs

    if data_id == "flaky":
        retry_jobs.flaky(handle, data_id, path, fails=1)
    else:
        retry_jobs.dies_once(handle, data_id, path)


def test_a_job_past_its_memory_limit_fails(client):
    handle = run(("hog", "light"), jobs.hog, client, max_memory="200MB")
    hog, light = handle.states
    assert hog.status is S.failed
    assert isinstance(hog.exception, MemoryError)
    assert "200 MB" in str(hog.exception)
    assert light.status is S.completed


def test_a_job_that_cancels_the_whole_run(client, tmp_path):
    ids = ("canceller", "other")
    handle = run(ids, _cancel_run, client, blocking=False, path=str(tmp_path))
    with handle:
        assert handle.wait(10)
        assert handle.cancelled
        assert handle.get_state("other").status is S.cancelled


def _cancel_run(handle, data_id, path):
    if data_id == "canceller":
        wait_until(lambda: Path(path, "started-other").exists())
        handle.cancel()
    else:
        jobs.gate(handle, data_id, path)


def _topics(dask_scheduler):
    # Ours only: dask makes topics of its own as it goes ("stealing" when it
    # moves a task, "scheduler", a client's id).
    return sorted(t for t in dask_scheduler._broker._topics if t.startswith("preload"))


def _plugins(dask_scheduler):
    return sorted(dask_scheduler.plugins)


def cluster_state(client):
    """What a run must leave as it found it."""
    return (
        client.run_on_scheduler(_topics),
        client.run_on_scheduler(_plugins),
        dict(client._event_handlers),
    )


def assert_left_as_found(client, before):
    assert cluster_state(client) == before
    # Released (the function scattered once) as the scheduler hears of it.
    assert wait_until(lambda: client.who_has() == {}, 5)
    runs = client.run(lambda: len(dask_worker._runs))
    assert set(runs.values()) == {0}
    # No job process, and no helper that forks them.
    assert wait_until(lambda: not job_processes(client), 5)


def test_close_leaves_the_cluster_and_the_client_as_found(client, tmp_path):
    before = cluster_state(client)
    handle = run(
        ("a", "b", "c"),
        jobs.stubborn,
        client,
        blocking=False,
        cancel_grace=0.2,
        path=str(tmp_path),
    )
    assert wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, 30)
    began = time.monotonic()
    handle.close()
    assert time.monotonic() - began < 0.2 + 1.5
    assert statuses(handle) == [S.cancelled] * 3, [
        repr(s.exception) for s in handle.states
    ]
    assert_left_as_found(client, before)


@pytest.mark.parametrize("how", ["cancel", "close"])
def test_a_run_stopped_as_it_starts_leaves_nothing(client, tmp_path, how):
    # Tasks that their workers were starting when dask cancelled them still
    # start: they must end at once, not run their jobs after the close.
    before = cluster_state(client)
    ids = [f"g{i}" for i in range(20)]
    handle = run(ids, jobs.gate, client, blocking=False, path=str(tmp_path))
    getattr(handle, how)()
    assert handle.wait(10)
    handle.close()
    assert statuses(handle) == [S.cancelled] * 20
    assert_left_as_found(client, before)
    time.sleep(0.3)  # a task started late would have begun its job by now
    assert not job_processes(client)


def test_a_job_that_exits_fails_with_its_exception(client):
    [state] = run(("a",), _exit, client).states
    assert state.status is S.failed
    assert isinstance(state.exception, SystemExit)


def _exit(handle, data_id):
    sys.exit(4)


def test_a_run_whose_client_closes_fails_and_leaves_nothing(client, cluster, tmp_path):
    # Its futures are cancelled in dask: its tasks kill their jobs, and the
    # workers forget the run, with no close() to tell them.
    with distributed.Client(cluster) as other:
        handle = run(("a", "b"), jobs.gate, other, blocking=False, path=str(tmp_path))
        assert wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, 30)
    assert handle.wait(10)
    for state in handle.states:
        assert state.status is S.failed
        assert "cancelled outside the run (the client closed" in str(state.exception)
    handle.close()
    assert wait_until(lambda: not job_processes(client), 5)
    assert set(client.run(lambda: len(dask_worker._runs)).values()) == {0}


KILLED_PARENT = textwrap.dedent(
    """
    import sys, time
    from distributed import Client
    from preload import ExecutorPreloadHandle
    import jobs

    client = Client(sys.argv[1])
    ids = ["a", "b", "c"]
    ExecutorPreloadHandle(
        ids, jobs.gate, executor=client, blocking=False, silent=True, path=sys.argv[2]
    )
    time.sleep(60)
    """
)


def test_jobs_end_when_the_handles_process_is_killed(client, cluster, tmp_path):
    script = tmp_path / "script.py"
    script.write_text(KILLED_PARENT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    parent = subprocess.Popen(
        [sys.executable, str(script), cluster.scheduler_address, str(tmp_path)],
        env=env,
    )
    try:
        assert wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, 30)
        assert job_processes(client)
    finally:
        parent.kill()
        parent.wait()
    assert wait_until(lambda: not job_processes(client), 10)
    assert set(client.run(lambda: len(dask_worker._runs)).values()) == {0}


def test_wrong_options_for_a_cluster_are_refused(client):
    with pytest.raises(ValueError, match="max_workers and mp_context"):
        run(("a",), jobs.ticks, client, max_workers=2)
    with pytest.raises(ValueError, match="max_workers and mp_context"):
        run(("a",), jobs.ticks, client, mp_context="spawn")


SCRIPT = textwrap.dedent(
    """
    import sys
    from distributed import Client
    from preload import ExecutorPreloadHandle, PreloadState

    class MainError(Exception):
        pass

    def job(handle, data_id, suffix):
        if data_id == "bad":
            raise MainError("from main")
        handle.notify(PreloadState(data_id, message=data_id + suffix))

    if __name__ == "__main__":
        with Client(sys.argv[1]) as client:
            for function, kwargs in [
                (job, {"suffix": "!"}),
                (lambda h, d: h.notify(PreloadState(d, message="lambda")), {}),
            ]:
                handle = ExecutorPreloadHandle(
                    ["a", "bad"], function, executor=client, silent=True, **kwargs
                )
                for s in handle.states:
                    print(s.status, s.message, type(s.exception).__name__)
    """
)


def test_functions_from_main_run_on_the_cluster(cluster, tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, str(script), cluster.scheduler_address],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "COMPLETED a! NoneType\nFAILED None MainError\n"
        "COMPLETED lambda NoneType\nCOMPLETED lambda NoneType\n"
    )


def test_convert_on_the_cluster(client, tmp_path):
    pytest.importorskip("xarray")
    convert = pytest.importorskip("preload.convert", exc_type=ImportError)
    import xarray as xr

    from preload.convert.samples import write_sample

    source = write_sample(tmp_path / "a.nc", 0.3)
    cache = tmp_path / "cache"
    handle = run([str(source)], convert.preload_data, client, cache_dir=str(cache))
    [state] = handle.states
    assert state.status is S.completed, state.exception
    [store] = cache.iterdir()
    with (
        xr.open_dataset(source, engine="h5netcdf") as expected,
        xr.open_zarr(store, chunks=None) as actual,
    ):
        assert actual.identical(expected)


def _recorded_gate(handle, data_id, path):
    jobs.record_pid(path, data_id)
    jobs.gate(handle, data_id, path)


def test_displays_show_where_each_job_runs_with_its_cpu_and_memory(client, tmp_path):
    from preload.display.table import live_html, live_text

    handle = run(("a", "b"), _recorded_gate, client, blocking=False, path=str(tmp_path))
    with handle:
        engine = handle._ExecutorPreloadHandle__run.engine
        assert wait_until(lambda: len(list(tmp_path.glob("pid-*"))) == 2, 30)
        pids = {
            p.name.split("-")[1]: p.name.split("-")[2] for p in tmp_path.glob("pid-*")
        }
        # Each job's worker reports its CPU and memory about once a second.
        samples = engine._running_pids
        assert wait_until(lambda: all(s.rss for s in samples().values()), 5)
        host = os.uname().nodename
        for data_id, sample in samples().items():
            assert sample.where == f"{host} {pids[data_id]}"
            assert sample.rss > 1e6 and sample.cpu >= 0
        view = engine.table.view(10)
        text = "\n".join(live_text(view, samples(), width=200))
        assert f"[{host} {pids['a']}]" in text
        assert f"[{host} {pids['b']}]" in live_html(view, samples())
        Path(tmp_path, "open").touch()
        assert handle.wait(10)
        assert samples() == {}


@pytest.mark.slow
def test_a_worker_killed_mid_run_never_hangs(tmp_path):
    # A cluster of its own: the killed worker's nanny starts a new one.
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        handle = run(
            ("a", "b"), _recorded_gate, client, blocking=False, path=str(tmp_path)
        )
        with handle:
            assert wait_until(lambda: len(list(tmp_path.glob("pid-*"))) == 2, 30)
            [job_pid] = [
                int(p.name.rsplit("-", 1)[1]) for p in tmp_path.glob("pid-a-*")
            ]
            [worker] = [
                pid
                for pid in worker_pids(client)
                if job_pid in [p.pid for p in psutil.Process(pid).children(True)]
            ]
            os.kill(worker, signal.SIGKILL)
            assert gone([job_pid]), "the job process outlived its worker"
            Path(tmp_path, "open").touch()
            assert handle.wait(20)
            a, b = handle.states
            assert b.status is S.completed
            # Run again elsewhere (or, after dask's allowed failures, FAILED).
            assert a.status is S.completed or isinstance(a.exception, WorkerDiedError)


def test_preload_run_on_a_scheduler(cluster, tmp_path):
    out = tmp_path / "states.jsonl"
    args = ["run", "preload.demo:preload_data", "a", "b", "--param", "duration=0.2"]
    result = preload(
        *args, "--scheduler", cluster.scheduler_address, "--json", str(out)
    )
    assert result.returncode == 0, result.stderr
    states = [json.loads(line) for line in out.read_text().splitlines()]
    assert [s["status"] for s in states] == ["completed", "completed"]
    for extra, error in [
        (["--scheduler", "nowhere"], "expected an address such as tcp://host:8786"),
        (["--scheduler", "local:2", "--threads"], "--threads is for local workers"),
    ]:
        usage = preload(*args, *extra)
        assert usage.returncode == 2
        assert error in usage.stderr, usage.stderr


@pytest.mark.slow
def test_preload_run_on_a_local_cluster_of_its_own(tmp_path):
    out = tmp_path / "states.jsonl"
    args = ["run", "preload.demo:preload_data", "a", "b", "--param", "duration=0.2"]
    result = preload(*args, "--scheduler", "local:2", "--json", str(out), timeout=120)
    assert result.returncode == 0, result.stderr
    states = [json.loads(line) for line in out.read_text().splitlines()]
    assert [s["status"] for s in states] == ["completed", "completed"]
