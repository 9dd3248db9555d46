"""The `preload` command, run as a user runs it."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import preload as preload_engine

from tests_support import preload


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
    # The same table and summary line as the first run's.
    table = second.splitlines()[-4:]
    assert [row.split()[1] for row in table[:3]] == ["CANCELLED"] * 3
    assert table[-1].startswith("3 jobs: 3 CANCELLED | 0:0")
    header = [line for line in out.splitlines() if line.startswith("Data ID")]
    assert len(header) == 2 and header[0] == header[1]


def test_demo_rejects_bad_options():
    result = preload("demo", "--jobs", "0")
    assert result.returncode == 2
    assert "must be >= 1" in result.stderr


MODULE = """
import time
from preload import PreloadState

def convert(handle, data_id, factor=1, label="x"):
    handle.notify(PreloadState(data_id, progress=0.5, message=f"{label} {factor * 2}"))

def broken(handle, data_id):
    if data_id == "bad":
        raise ValueError("cannot convert bad")

def slow(handle, data_id):
    while not handle.cancelled:
        time.sleep(0.01)
"""


def preload_in(folder, *args, timeout=60):
    """`preload ...` run from *folder*, where the module `myjobs` is."""
    (folder / "myjobs.py").write_text(MODULE)
    return preload(*args, timeout=timeout, cwd=folder)


@pytest.mark.parametrize("threads", [[], ["--threads"]], ids=["processes", "threads"])
def test_run_passes_params_and_writes_json(tmp_path, threads):
    result = preload_in(
        tmp_path,
        "run",
        "myjobs:convert",
        "a",
        "b",
        "--param",
        "factor=3",
        "--param",
        "label=hello",
        "-j",
        "2",
        "--json",
        "out.jsonl",
        *threads,
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").open()]
    assert records == [
        {
            "data_id": i,
            "status": "completed",
            "progress": 0.5,
            "message": "hello 6",
            "exception": None,
        }
        for i in ("a", "b")
    ]


def test_run_exits_1_when_a_job_fails(tmp_path):
    (tmp_path / "ids.txt").write_text("good\n\nbad\n")
    result = preload_in(
        tmp_path, "run", "myjobs:broken", "--ids-from", "ids.txt", "--json", "out.jsonl"
    )
    assert result.returncode == 1
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").open()]
    assert [r["status"] for r in records] == ["completed", "failed"]
    assert records[1]["exception"] == "ValueError: cannot convert bad"


def test_run_times_out_a_job(tmp_path):
    result = preload_in(
        tmp_path, "run", "myjobs:slow", "a", "--timeout", "0.3", "--json", "out.jsonl"
    )
    assert result.returncode == 1
    [record] = [json.loads(line) for line in (tmp_path / "out.jsonl").open()]
    assert record["exception"] == "TimeoutError: 'a' exceeded its timeout of 0.3 s"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["nomod:f", "a"], "cannot import module 'nomod'"),
        (["myjobs:nope", "a"], "module 'myjobs' has no 'nope'"),
        (["myjobs", "a"], "expected MODULE:FUNCTION"),
        (["myjobs:convert"], "no data ids"),
        (["myjobs:convert", "a", "a"], "duplicate data ids: a"),
        (["myjobs:convert", "a", "--param", "1x=2"], "--param expects KEY=VALUE"),
        (["myjobs:convert", "a", "--ids-from", "missing.txt"], "cannot read ids"),
        (["myjobs:convert", "a", "--start-method", "bogus"], "invalid choice"),
        (["myjobs:convert", "a", "-j", "0"], "must be >= 1"),
        (["myjobs:convert", "a", "-j", "x"], "-j/--jobs: expected a whole number"),
        (["myjobs:convert", "a", "--timeout", "abc"], "expected seconds, got 'abc'"),
        (["myjobs:convert", "a", "--cancel-grace", "-1"], "must be >= 0, got -1"),
        (["myjobs:convert", "a", "--ids-from", "latin1.txt"], "not UTF-8 text"),
        (["myjobs:convert", "a", "--param", 'x={"a":'], "starts like JSON but is not"),
        (["myjobs:convert", "a", "--param", "x=[1,"], "starts like JSON but is not"),
        (["myjobs:convert", "a", "--param", "x=12ab"], "starts like JSON but is not"),
        (["myjobs:convert", "a", "--param", "x=null!"], "starts like JSON but is not"),
    ],
)
def test_run_rejects_a_bad_command_line(tmp_path, args, error):
    (tmp_path / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    result = preload_in(tmp_path, "run", *args)
    assert result.returncode == 2
    # One line, no traceback.
    [line] = [line for line in result.stderr.splitlines() if "error:" in line]
    assert error in line
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # nothing started


def test_run_takes_options_between_ids_and_ids_after_a_double_dash(tmp_path):
    result = preload_in(
        tmp_path,
        "run",
        "myjobs:convert",
        "-j",
        "2",
        "a",
        "--param",
        "label=trueblue",
        "b",
        "--json",
        "out.jsonl",
        "--threads",
        "--",
        "-x",
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").open()]
    assert [(r["data_id"], r["message"]) for r in records] == [
        (i, "trueblue 2") for i in ("a", "b", "-x")
    ]


def test_version_and_help():
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    version = re.search(r'^version = "(.+)"', pyproject, re.MULTILINE).group(1)
    assert preload("--version").stdout == f"preload {version}\n"
    assert preload_engine.__version__ == version
    top = preload("--help").stdout
    assert "``" not in top
    assert "Preload slow data resources" in top
    assert "Run the seed scenario" in preload("demo", "--help").stdout


def test_version_of_a_source_tree_is_its_pyproject_version(tmp_path):
    # The code that runs, not what an installed distribution says.
    shutil.copytree(Path(preload_engine.__file__).parent, tmp_path / "preload")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "preload-engine"\nversion = "9.8.7"\n'
    )
    result = subprocess.run(
        [sys.executable, "-c", "import preload; print(preload.__version__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        timeout=30,
    )
    assert result.stdout == "9.8.7\n", result.stderr


def test_run_exits_130_after_ctrl_c(tmp_path):
    (tmp_path / "myjobs.py").write_text(MODULE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "preload.cli", "run", "myjobs:slow", "a", "b"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,
    )
    try:
        lines = []
        while len(lines) < 2:  # both STARTED lines (a log display: not a TTY)
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            if "STARTED" in line:
                lines.append(line)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "Interrupted."


CTRL_C_WHILE_STARTING = """
import os, signal, sys, threading
from preload.cli import main

def ctrl_c_at(name, when):
    # Ctrl-C (to the whole process group, as a terminal sends it) just
    # before or after the run starts the thread called *name*.
    start = threading.Thread.start
    def start_with_ctrl_c(self):
        if self.name == name and when == "before":
            os.killpg(0, signal.SIGINT)
        start(self)
        if self.name == name and when == "after":
            os.killpg(0, signal.SIGINT)
    threading.Thread.start = start_with_ctrl_c

if __name__ == "__main__":
    ctrl_c_at(sys.argv[1], sys.argv[2])
    sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.parametrize(
    ("thread", "when"),
    [
        ("preload-collector", "after"),
        ("preload-receiver", "before"),
        ("preload-supervisor", "after"),
    ],
)
def test_ctrl_c_while_the_run_starts_closes_it(tmp_path, thread, when):
    # Held back until every process and thread has started, then the run is
    # closed as after any Ctrl-C: each job CANCELLED by the engine.
    (tmp_path / "myjobs.py").write_text(MODULE)
    (tmp_path / "ctrl_c.py").write_text(CTRL_C_WHILE_STARTING)
    result = subprocess.run(
        [sys.executable, "ctrl_c.py", thread, when, "run", "myjobs:slow", "a", "b"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
        start_new_session=True,
    )
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip().splitlines() == ["Interrupted."]
    rows = result.stdout.splitlines()[-3:-1]
    assert [row.split() for row in rows] == [
        [i, "CANCELLED", "-", "-", "-"] for i in ("a", "b")
    ]
