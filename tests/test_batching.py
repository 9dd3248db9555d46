"""Batching: short jobs go to the workers many at a time, each keeping its own
state, cancel, timeout and crash isolation."""

from __future__ import annotations

import time

import psutil
import pytest

from preload import ExecutorPreloadHandle, PreloadStatus
from preload.errors import WorkerDiedError

import jobs
from conftest import wait_until

S = PreloadStatus


def run(data_ids, **kwargs):
    return ExecutorPreloadHandle(data_ids, jobs.by_name, silent=True, **kwargs)


def runner(handle):
    return handle._ExecutorPreloadHandle__run.engine._runner


def test_every_id_ends_with_its_own_state():
    kinds = ["ok", "raise", "cancel", "msg", "ok", "ok", "msg", "ok"]
    ids = [f"{kinds[i % len(kinds)]}-{i}" for i in range(3000)]
    handle = run(ids, blocking=False, max_workers=2)
    batches_of = runner(handle)
    assert handle.wait(60)
    # Instant jobs went many to a batch.
    assert batches_of.batches < len(ids) / 10
    for state in handle.states:
        kind = state.data_id.split("-")[0]
        if kind == "raise":
            assert state.status is S.failed
            assert isinstance(state.exception, ValueError)
            assert str(state.exception) == f"failed: {state.data_id}"
        elif kind == "cancel":
            assert state.status is S.cancelled
        else:
            assert state.status is S.completed, state
            assert state.exception is None
            if kind == "msg":
                assert state.message == f"for {state.data_id}"
            else:
                assert state.message is None
    handle.close()


def test_a_worker_killed_in_a_batch_fails_only_its_job():
    ids = [f"ok-{i}" for i in range(2000)]
    ids[1500] = "exit-1500"
    handle = run(ids, blocking=False, max_workers=2)
    submitted = runner(handle)
    assert handle.wait(30)
    assert submitted.batches < 200  # so "exit-1500" ran in a batch
    for state in handle.states:
        if state.data_id == "exit-1500":
            assert state.status is S.failed
            assert isinstance(state.exception, WorkerDiedError)
            assert "exited with code 3 while running it" in str(state.exception)
        else:
            # The job's batch-mates ran again on a fresh pool.
            assert state.status is S.completed, state


def test_a_job_that_raises_systemexit_in_a_batch_fails_alone():
    ids = [f"ok-{i}" for i in range(2000)]
    ids[1500] = "sysexit-1500"
    handle = run(ids, blocking=False, max_workers=2)
    submitted = runner(handle)
    assert handle.wait(30)
    assert submitted.batches < 200  # so "sysexit-1500" ran in a batch
    for state in handle.states:
        if state.data_id == "sysexit-1500":
            assert state.status is S.failed
            assert isinstance(state.exception, SystemExit)
            assert str(state.exception) == "exit in sysexit-1500"
        else:
            assert state.status is S.completed, state


def test_a_timeout_in_a_batch_fails_only_its_job(tmp_path):
    ids = [f"ok-{i}" for i in range(2000)]
    ids[1500] = "hang-1500"
    handle = run(
        ids, max_workers=2, job_timeout=0.3, cancel_grace=0.2, path=str(tmp_path)
    )
    for state in handle.states:
        if state.data_id == "hang-1500":
            assert state.status is S.failed
            assert isinstance(state.exception, TimeoutError)
            assert str(state.exception) == (
                "'hang-1500' exceeded its timeout of 0.3 s and was terminated"
                " 0.2 s later (cancel_grace)"
            )
        else:
            assert state.status is S.completed, state


def test_cancel_in_the_middle_of_batches():
    ids = [f"sleep-{i}" for i in range(3000)]
    handle = run(ids, blocking=False, max_workers=2)
    assert wait_until(
        lambda: sum(s.status is S.completed for s in handle.states) >= 300, 30
    )
    assert runner(handle).batches < 300  # several jobs a batch
    t0 = time.perf_counter()
    handle.cancel()
    assert time.perf_counter() - t0 < 0.2
    assert handle.wait(5)
    statuses = [s.status for s in handle.states]
    assert set(statuses) == {S.completed, S.cancelled}
    # Jobs end in input order on two workers: no cancelled job before the
    # last completed ones, save those of the other worker's batch.
    assert statuses.count(S.cancelled) > 1000
    handle.close()


@pytest.mark.slow
def test_100000_ids():
    me = psutil.Process()
    before = me.memory_info().rss
    ids = [f"ok-{i}" for i in range(100_000)]
    t0 = time.perf_counter()
    handle = run(ids)
    took = time.perf_counter() - t0
    assert [s for s in handle.states if s.status is not S.completed] == []
    assert me.memory_info().rss - before < 200e6
    assert took < 30, f"{took:.1f} s"
