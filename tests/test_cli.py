"""The `preload` command, run as a user runs it."""

import subprocess
import sys

import pytest


def preload(*args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "preload.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("threads", [[], ["--threads"]], ids=["processes", "threads"])
def test_demo_runs_a_blocking_and_a_cancelled_run(threads):
    result = preload(
        "demo", "--jobs", "3", "--duration", "0.3", "--cancel-after", "0.1", *threads
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    first, second = out.split("Non-blocking run")
    # A status line and a table row each, and the summary line.
    assert first.count("COMPLETED") == 2 * 3 + 1
    assert first.splitlines()[-2].startswith("3 jobs: 3 COMPLETED | 0:0")
    table = second.splitlines()[-3:]
    assert [row.split()[1] for row in table] == ["CANCELLED"] * 3


def test_demo_rejects_bad_options():
    result = preload("demo", "--jobs", "0")
    assert result.returncode == 2
    assert "must be >= 1" in result.stderr
