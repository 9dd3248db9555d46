"""Awaiting a handle: ``await handle``, ``wait_async()``, ``async with``."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from preload import ExecutorPreloadHandle, PreloadStatus

import jobs

S = PreloadStatus


class Ticker:
    """Counts the event loop's turns, every 10 ms, while it runs."""

    def __init__(self):
        self.ticks = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self):
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1

    def stop(self):
        self._task.cancel()


def gated(tmp_path, executor, **kwargs):
    return ExecutorPreloadHandle(
        ("a", "b"),
        jobs.gate,
        executor,
        blocking=False,
        silent=True,
        path=str(tmp_path),
        **kwargs,
    )


async def started(tmp_path, count=2):
    while len(list(tmp_path.glob("started-*"))) < count:
        await asyncio.sleep(0.005)


def test_await_waits_for_every_job_without_blocking_the_loop(tmp_path, executor):
    async def main():
        handle = gated(tmp_path, executor)
        ticker = Ticker()
        await asyncio.wait_for(started(tmp_path), 10)
        asyncio.get_running_loop().call_later(0.3, Path(tmp_path, "open").touch)
        before = ticker.ticks
        waiters = [asyncio.create_task(handle.wait_async()) for _ in range(10)]
        await asyncio.wait_for(handle, 10)
        assert await asyncio.gather(*waiters) == [True] * 10
        ticker.stop()
        assert ticker.ticks - before >= 10  # the loop ran during the 0.3 s
        # No thread waited: none of the loop's default executor was made.
        assert not [t for t in threading.enumerate() if t.name.startswith("asyncio")]
        return handle

    handle = asyncio.run(main())
    assert [s.status for s in handle.states] == [S.completed, S.completed]
    assert handle.wait(0)  # released: nothing of the run is left


def test_wait_async_times_out_and_cancelling_it_leaves_the_jobs_alone(
    tmp_path, executor
):
    async def main():
        handle = gated(tmp_path, executor)
        try:
            await asyncio.wait_for(started(tmp_path), 10)
            started_at = time.monotonic()
            assert await handle.wait_async(0.1) is False
            assert 0.09 < time.monotonic() - started_at < 2
            waiter = asyncio.create_task(handle.wait_async())
            await asyncio.sleep(0.05)
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            assert not handle.cancelled and not handle.done
            Path(tmp_path, "open").touch()
            assert await handle.wait_async(10) is True
        finally:
            handle.close()
        return handle

    handle = asyncio.run(main())
    assert [s.status for s in handle.states] == [S.completed, S.completed]


def test_async_with_closes_on_exit_while_the_loop_runs_on(tmp_path):
    async def main():
        ticker = Ticker()
        async with ExecutorPreloadHandle(
            ("a",),
            jobs.stubborn,
            blocking=False,
            silent=True,
            cancel_grace=0.5,
            path=str(tmp_path),
        ) as handle:
            while not Path(tmp_path, "started-a").exists():
                await asyncio.sleep(0.005)
            before, started_at = ticker.ticks, time.monotonic()
        # The job ignored the cancel: terminated after the grace.
        assert time.monotonic() - started_at >= 0.5
        assert ticker.ticks - before >= 20
        ticker.stop()
        assert handle.wait(0)
        return handle

    handle = asyncio.run(main())
    assert handle.get_state("a").status is S.cancelled


def test_a_handle_with_no_ids_is_awaited_at_once():
    async def main():
        handle = ExecutorPreloadHandle(
            (), jobs.gate, blocking=False, silent=True, path="."
        )
        await asyncio.wait_for(handle, 1)
        return await handle.wait_async(0)

    assert asyncio.run(main()) is True
