"""Faults: forced cancel, timeouts, dying workers, Ctrl-C, a dead parent or Manager.

Each test checks the final state of every job; the `no_leaks` fixture checks that
no process or thread is left behind.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil
import pytest

from preload import ExecutorPreloadHandle, PreloadStatus
from preload.errors import ChannelLostError, WorkerDiedError

import jobs
from conftest import gone, wait_until

S = PreloadStatus


# A caller's process pool as it should be made: fork in a process with
# threads may deadlock (Python 3.12+ warns).
FORKSERVER = multiprocessing.get_context("forkserver")


def run(data_ids, function, **kwargs):
    kwargs.setdefault("silent", True)
    return ExecutorPreloadHandle(data_ids, function, **kwargs)


def attempts(path, data_id):
    return len(list(Path(path).glob(f"pid-{data_id}-*")))


def test_cancel_terminates_jobs_still_running_after_the_grace(tmp_path):
    with run(
        ("a", "b"), jobs.stubborn, blocking=False, cancel_grace=0.3, path=str(tmp_path)
    ) as handle:
        assert wait_until(lambda: len(list(tmp_path.glob("child-*"))) == 2, 30)
        children = [int(p.read_text()) for p in tmp_path.glob("child-*")]
        handle.cancel()  # returns at once; the grace runs in the background
        assert not handle.done
        assert handle.wait(0.3 + 5)
        assert [s.status for s in handle.states] == [S.cancelled] * 2
        assert gone(children), "a job's child process survived"


def test_timeout_seen_by_a_cooperative_job_fails_it(tmp_path):
    # One worker: "slow" (cooperative, 5 s) first, then "fast" (0.1 s).
    handle = run(
        ("slow", "fast"),
        jobs.mixed,
        max_workers=1,
        job_timeout=0.5,
        path=str(tmp_path),
        roles={"slow": "steady:5", "fast": "steady:0.1"},
    )
    slow, fast = handle.states
    assert slow.status is S.failed
    assert isinstance(slow.exception, TimeoutError)
    assert str(slow.exception) == "'slow' exceeded its timeout of 0.5 s"
    assert fast.status is S.completed
    # "slow" stopped on its own, so its worker was not terminated: "fast" ran there.
    [slow_pid] = [p.name.rsplit("-", 1)[1] for p in tmp_path.glob("pid-slow-*")]
    [fast_pid] = [p.name.rsplit("-", 1)[1] for p in tmp_path.glob("pid-fast-*")]
    assert slow_pid == fast_pid


def test_timeout_terminates_a_job_that_does_not_stop(tmp_path):
    # Two workers: "stuck" on one; on the other "steady-1", then "steady-2",
    # likely still running when "stuck" is terminated, at ~1.7 s.
    roles = {"stuck": "stubborn", "steady-1": "steady:0.6", "steady-2": "steady:1.0"}
    handle = run(
        list(roles),
        jobs.mixed,
        max_workers=2,
        job_timeout=1.5,
        cancel_grace=0.2,
        path=str(tmp_path),
        roles=roles,
    )
    stuck, steady_1, steady_2 = handle.states
    assert stuck.status is S.failed
    assert isinstance(stuck.exception, TimeoutError)
    assert "terminated 0.2 s later" in str(stuck.exception)
    assert gone([int(Path(tmp_path, "child-stuck").read_text())])
    # The jobs beside it are run again on a fresh pool and complete.
    assert (steady_1.status, steady_2.status) == (S.completed, S.completed)


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("exit", "exited with code 3"),
        ("sigkill", "was killed by SIGKILL"),
        ("segfault", "was killed by SIGSEGV"),
    ],
)
def test_a_dying_worker_fails_only_its_job(tmp_path, how, words):
    roles = {"crash": f"crash:{how}", "steady": "steady", "later": "steady"}
    handle = run(
        list(roles), jobs.mixed, max_workers=2, path=str(tmp_path), roles=roles
    )
    crashed, steady, later = handle.states
    assert crashed.status is S.failed
    assert isinstance(crashed.exception, WorkerDiedError)
    [pid] = [p.name.split("-")[-1] for p in tmp_path.glob("pid-crash-*")]
    assert str(crashed.exception) == f"worker process {pid} {words} while running it"
    assert (steady.status, later.status) == (S.completed, S.completed)
    # "steady" ran beside the crash: the broken pool lost it, it ran again.
    assert attempts(tmp_path, "steady") == 2


def test_a_return_value_is_not_sent_back():
    handle = run(("a",), jobs.returns_a_lock)
    assert handle.get_state("a").status is S.completed


def test_a_dead_manager_fails_the_jobs_without_hanging(tmp_path):
    # A Manager carries the messages of jobs on a caller's process pool (our
    # own pools use pipes and shared memory).
    with ProcessPoolExecutor(2, mp_context=FORKSERVER) as pool:
        handle = run(
            ("a", "b"), jobs.gate, blocking=False, executor=pool, path=str(tmp_path)
        )
        assert wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2, 30)
        manager = handle._ExecutorPreloadHandle__run.engine.channel.end.manager_pid
        os.kill(manager, signal.SIGKILL)
        assert handle.wait(10)
        for state in handle.states:
            assert state.status is S.failed
            assert isinstance(state.exception, ChannelLostError)
            assert f"Manager process (pid {manager})" in str(state.exception)
        handle.close()


@pytest.mark.slow
def test_open_cancel_close_cycles_leave_nothing(tmp_path):
    me = psutil.Process()

    def cycle():
        handle = run(("a", "b"), jobs.gate, blocking=False, path=str(tmp_path))
        handle.cancel()
        handle.close()
        assert handle.done

    for _ in range(10):  # warm up: the forkserver and its resource tracker
        cycle()
    fds, threads = me.num_fds(), threading.active_count()
    children = len(me.children(recursive=True))
    for _ in range(100):
        cycle()
    # Flat: the last cycle's few objects may wait for the garbage collector,
    # a leak would add at least one per cycle.
    assert me.num_fds() <= fds + 10
    assert threading.active_count() <= threads
    assert len(me.children(recursive=True)) <= children


SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from preload import ExecutorPreloadHandle
    sys.path.insert(0, sys.argv[2])
    import jobs

    if __name__ == "__main__":
        mode, path = sys.argv[1], sys.argv[3]
        if mode == "blocking":
            ExecutorPreloadHandle(["a", "b"], jobs.stubborn, silent=True, path=path)
        elif mode == "closing":
            handle = ExecutorPreloadHandle(
                ["a", "b"], jobs.stubborn, silent=True, blocking=False,
                cancel_grace=None, path=path,
            )
            while len(list(Path(path).glob("child-*"))) < 2:
                time.sleep(0.01)
            Path(path, "closing").touch()
            handle.close()  # waits for ever: the jobs never look at cancelled
        else:
            job = jobs.detached_grandchild if mode == "detached" else jobs.stubborn
            ExecutorPreloadHandle(
                ["a", "b"], job, silent=True, blocking=False, path=path
            )
            Path(path, "ready").touch()
            if mode in ("killed", "detached"):
                time.sleep(60)
        print("main ends")
    """
)


def start_script(tmp_path, mode, env=None):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    work = tmp_path / "work"
    work.mkdir()
    tests_dir = str(Path(__file__).parent)
    proc = subprocess.Popen(
        [sys.executable, str(script), mode, tests_dir, str(work)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as in a terminal
        env=env,
    )
    return proc, work


def spawned_pids(work):
    """The workers of the script and the children they started."""
    return [int(p.read_text()) for p in work.glob("started-*")] + [
        int(p.read_text()) for p in work.glob("child-*")
    ]


def test_ctrl_c_stops_a_blocking_call_and_every_worker(tmp_path):
    proc, work = start_script(tmp_path, "blocking")
    try:
        assert wait_until(lambda: len(list(work.glob("child-*"))) == 2, 30)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole group
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert err.count("KeyboardInterrupt") == 1, err  # the workers print nothing
    assert "main ends" not in out
    assert gone(spawned_pids(work))


def test_ctrl_c_while_close_waits_for_ever_stops_everything(tmp_path):
    # close() with cancel_grace=None waits for jobs that never stop; Ctrl-C
    # ends that wait, and the exit hook then terminates them.
    proc, work = start_script(tmp_path, "closing")
    try:
        assert wait_until(lambda: len(list(work.glob("child-*"))) == 2, 30)
        assert wait_until(lambda: (work / "closing").exists(), 30)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert err.count("KeyboardInterrupt") == 1, err
    assert gone(spawned_pids(work))


def test_a_script_that_ends_without_close_leaves_nothing(tmp_path):
    proc, work = start_script(tmp_path, "unclosed")
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out == "main ends\n"
    assert gone(spawned_pids(work))


def test_workers_and_manager_end_when_the_parent_is_killed(tmp_path):
    temp = tmp_path / "temp"
    temp.mkdir()
    proc, work = start_script(tmp_path, "killed", {**os.environ, "TMPDIR": str(temp)})
    try:
        assert wait_until(lambda: len(list(work.glob("child-*"))) == 2, 30)
        ours = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
        ours += spawned_pids(work)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    # The forkserver and resource tracker end on their own too.
    assert gone(ours, timeout=5)
    # The Manager removed the killed parent's multiprocessing temp folder.
    assert list(temp.iterdir()) == []


def test_a_killed_parent_takes_the_grandchildren_its_jobs_detached(tmp_path):
    # A worker leads its own process group; when its parent is gone, its
    # lifeline ends the whole group, what the jobs detached included.
    proc, work = start_script(tmp_path, "detached")
    try:
        assert wait_until(lambda: len(list(work.glob("grandchild-*"))) == 2, 30)
        detached = [int(p.read_text()) for p in work.glob("grandchild-*")]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        proc.kill()
    assert gone(detached, timeout=5)


def test_a_worker_that_dies_beside_a_busy_one_is_noticed(tmp_path):
    # The last worker a pool spawns is the one CPython's manager thread may not
    # watch yet; it must still be noticed while the other worker is busy.
    with run(
        ("busy", "exit"),
        jobs.exit_soon,
        blocking=False,
        max_workers=2,
        path=str(tmp_path),
    ) as handle:
        assert wait_until(lambda: handle.get_state("exit").status.is_final, 10)
        assert isinstance(handle.get_state("exit").exception, WorkerDiedError)
        assert not handle.get_state("busy").status.is_final
        Path(tmp_path, "open").touch()
        assert handle.wait(30)
        assert handle.get_state("busy").status is S.completed
