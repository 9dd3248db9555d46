"""The pipe channel of our own pools, and what a worker imports."""

from __future__ import annotations

import multiprocessing
import os
import queue
import subprocess
import sys

import pytest

from preload.channel import ManagerChannel, PipeChannel
from preload.errors import ChannelLostError

import jobs


def test_a_batch_that_cannot_be_read_from_the_manager_ends_the_channel():
    # The receiver reports it (the engine then fails the open jobs, saying
    # why) instead of ending its thread unnoticed, with every job waiting.
    channel = ManagerChannel(frozenset("a"), "t", multiprocessing.get_context("spawn"))
    lost: queue.SimpleQueue = queue.SimpleQueue()
    channel.start(lambda batch: None, lost.put)
    channel.end._queue.put(jobs.Unreadable(os.getpid()))
    error = lost.get(timeout=10)
    channel.close()
    assert isinstance(error, ChannelLostError)
    assert "could not be read" in str(error)
    assert "cannot be read in this process" in str(error)


def test_a_cut_frame_spoils_only_its_own_pipe():
    channel = PipeChannel(frozenset("ab"), "t", multiprocessing.get_context("spawn"))
    delivered: queue.SimpleQueue = queue.SimpleQueue()
    channel.start(delivered.put, lost=None)
    end = channel.end_for_pool(2)
    end.use_slot(0)
    end._send([("a", "started", None, None, None)])
    # A worker killed half-way through a frame: a header that promises more.
    cut = end._writers[1]
    os.write(cut.fileno(), (1000).to_bytes(8, "big") + b"partial")
    big = "x" * 200_000  # more than a pipe holds: read in parts
    end._send([("a", None, 0.5, big, None)])
    assert delivered.get(timeout=5) == [("a", "started", None, None, None)]
    assert delivered.get(timeout=5) == [("a", None, 0.5, big, None)]
    channel.retire(end)
    channel.close()
    assert delivered.empty()


def test_the_cancel_flag_is_shared_memory():
    channel = PipeChannel(frozenset("a"), "t", multiprocessing.get_context("spawn"))
    end = channel.end_for_pool(1)
    assert not end.cancel_requested()
    end.request_cancel()  # a job cancels the whole preload
    assert channel.cancel_requested()
    channel.retire(end)
    channel.close()


def test_a_worker_imports_the_worker_side_only():
    # The forkserver imports this module up front: the sooner, the sooner
    # the first worker starts.
    code = (
        "import sys, preload.runners.in_worker;"
        "print(sorted(m for m in sys.modules if m.startswith('preload.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    ).stdout
    loaded = eval(out)
    heavy = ("preload.display", "preload.engine", "preload.executor_handle")
    assert not [m for m in loaded if m.startswith(heavy)]
    assert "preload.runners.pool" not in loaded


PRELOADED = """
{top}
import sys
from multiprocessing import forkserver

def main():
    from preload.engine import default_mp_context, prepare_forkserver

    prepare_forkserver(default_mp_context())
    print(forkserver._forkserver._preload_modules)

if __name__ == "__main__":
    main()
"""


def test_the_forkserver_imports_what_a_script_imports_at_its_top(tmp_path):
    # Its workers run the script's top level again: what it imports there,
    # the forkserver imports once for them all; nothing more.
    found = []
    for top in ("from preload import ExecutorPreloadHandle\nimport fractions", ""):
        script = tmp_path / "script.py"
        script.write_text(PRELOADED.format(top=top))
        found.append(
            subprocess.run(
                [sys.executable, str(script)],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            ).stdout
        )
    assert "'preload.runners.in_worker'" in found[0]
    assert "'preload.executor_handle'" in found[0]
    assert "'fractions'" in found[0]
    assert "'preload.runners.in_worker'" in found[1]
    assert "'preload.executor_handle'" not in found[1]
    assert "'fractions'" not in found[1]


IMPORT_WATCH = """
import os, sys

_forkserver = os.getpid()


def _record(event, args):
    if event == "import" and os.getpid() != _forkserver:
        with open(os.environ["IMPORT_LOG"], "a") as log:
            log.write(args[0] + "\\n")


sys.addaudithook(_record)
"""

WATCHED = """
from multiprocessing import forkserver
from preload import ExecutorPreloadHandle

def job(handle, data_id):
    import colorsys  # the job's own import: the watch sees it

if __name__ == "__main__":
    forkserver.set_forkserver_preload(["import_watch"])
    ExecutorPreloadHandle(["a", "b", "c"], job, silent=True, max_workers=2{context})
"""


@pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(),
    reason="workers start from a forkserver only where there is one",
)
@pytest.mark.parametrize(
    "context", ["", ', mp_context="forkserver"'], ids=["default", "forkserver given"]
)
def test_a_worker_imports_nothing_the_forkserver_could_have(tmp_path, context):
    # What a worker imports after the fork (to unpickle its start, to run
    # the script's top level again) it imports alone, each time: the
    # forkserver imports it once for all. An audit hook, preloaded in the
    # forkserver, records what each worker imports.
    (tmp_path / "import_watch.py").write_text(IMPORT_WATCH)
    (tmp_path / "script.py").write_text(WATCHED.format(context=context))
    log = tmp_path / "imports.txt"
    subprocess.run(
        [sys.executable, str(tmp_path / "script.py")],
        check=True,
        timeout=60,
        env={
            **os.environ,
            "IMPORT_LOG": str(log),
            "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
        },
    )
    assert set(log.read_text().split()) == {"colorsys"}
