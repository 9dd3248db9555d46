"""The lifeline: a worker's wait for its parent's end, by pidfd or by polling."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from preload import lifeline


@pytest.mark.parametrize("waiter", [lifeline._waiter, lifeline._polling_waiter])
def test_the_wait_ends_when_the_process_ends(waiter, monkeypatch):
    monkeypatch.setattr(lifeline, "POLL", 0.01)
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        wait = waiter(proc.pid)
        assert wait is not None
        ended = threading.Event()
        thread = threading.Thread(target=lambda: (wait(), ended.set()))
        thread.start()
        assert not ended.wait(0.2), "the wait ended while the process runs"
        proc.stdin.close()  # it ends, and is not reaped yet: a zombie
        assert ended.wait(5)
        thread.join()
    finally:
        proc.kill()
        proc.wait()
    assert waiter(proc.pid) is None  # reaped: nothing to wait for
