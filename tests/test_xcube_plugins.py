"""xcube's plugins run unchanged: the patterns of their preload handles, on the
default worker processes and on a ThreadPoolExecutor."""

from __future__ import annotations

import gc
import multiprocessing
import re
from collections.abc import Mapping
from unittest.mock import Mock

import pytest

from preload import ExecutorPreloadHandle, PreloadState, PreloadStatus

import jobs
import plugins
from conftest import our_processes, wait_until

S = PreloadStatus


def with_executor(executor) -> dict:
    return {} if executor is None else {"executor": executor}


@pytest.fixture
def sources(tmp_path):
    folder = tmp_path / "remote"
    folder.mkdir()
    files = {}
    for i, name in enumerate(["a.nc", "b.tif", "c.zip"]):
        files[name] = folder / name
        files[name].write_bytes(bytes([i]) * (plugins.CHUNK * 5))
    return files


def test_zenodo_like_keeps_its_attributes_and_its_files(tmp_path, sources, executor):
    cache = tmp_path / "cache"
    urls = [f"file://{path}" for path in sources.values()]
    handle = plugins.ZenodoLike(cache, *urls, silent=True, **with_executor(executor))
    assert our_processes() == []  # released by the blocking call itself
    assert handle._data_ids == {name: f"file://{p}" for name, p in sources.items()}
    assert handle._executor == "zenodo's own"
    assert handle._states == "zenodo's own"
    assert handle.states == [
        PreloadState(name, S.completed, 1.0, "Preloaded.") for name in sources
    ]
    # close() was not called by the constructor: the downloads are still there.
    assert sorted(p.name for p in (cache / "downloads").iterdir()) == sorted(sources)
    assert (cache / "a.nc.zarr").read_bytes() == sources["a.nc"].read_bytes()
    handle.close()
    assert not (cache / "downloads").exists()


def test_states_is_xcubes_read_only_mapping(executor):
    handle = ExecutorPreloadHandle(
        ["a", "b"], jobs.ticks, silent=True, **with_executor(executor)
    )
    states = handle._states
    assert isinstance(states, Mapping)
    assert list(states) == ["a", "b"] and len(states) == 2
    assert states["a"] == PreloadState("a", S.completed, 1.0, "Done.")
    with pytest.raises(TypeError):
        states["a"] = PreloadState("a")  # type: ignore[index]
    with pytest.raises(KeyError):
        states["z"]


def test_progress_that_overshoots_by_rounding_is_clamped(executor):
    handle = ExecutorPreloadHandle(
        ["a"], plugins.overshoots, silent=True, **with_executor(executor)
    )
    assert handle.get_state("a") == PreloadState("a", S.completed, 1.0)


def test_clms_like_bound_method_and_helper_thread(tmp_path, sources, executor):
    (tmp_path / "downloads").mkdir()
    downloader = plugins.Downloader(sources, tmp_path)
    handle = plugins.ClmsLike(
        {name: {} for name in sources},
        tmp_path,
        downloader.preload,
        silent=True,
        **with_executor(executor),
    )
    assert our_processes() == []
    assert handle.states == [
        PreloadState(name, S.completed, 1.0, "Downloaded.") for name in sources
    ]
    # Its close() reports after the final status: the message changes, the
    # status stays; then it removes its folder, without super().close().
    handle.close()
    assert handle.states == [
        PreloadState(name, S.completed, 1.0, "Cleaning up Finished.")
        for name in sources
    ]
    assert not (tmp_path / "downloads").exists()


def test_clms_like_cancel_reaches_the_jobs_helper_threads(tmp_path, executor):
    (tmp_path / "downloads").mkdir()
    big = tmp_path / "big.nc"
    big.write_bytes(b"x" * (plugins.CHUNK * 100_000))  # ~400 MB if not cancelled
    downloader = plugins.Downloader({"big.nc": big}, tmp_path)
    handle = plugins.ClmsLike(
        {"big.nc": {}},
        tmp_path,
        downloader.preload,
        blocking=False,
        silent=True,
        cancel_grace=None,  # only the job's own thread can stop it
        **with_executor(executor),
    )
    assert wait_until(lambda: (handle.get_state("big.nc").progress or 0) > 0)
    ExecutorPreloadHandle.cancel(handle)
    assert handle.wait(10)
    assert handle.get_state("big.nc").status is S.cancelled
    assert our_processes() == []
    handle.close()  # the subclass's own: reports, removes its folder


def test_zenodo_like_cancel_reaches_its_helper_thread(tmp_path, executor):
    big = tmp_path / "big.nc"
    big.write_bytes(b"x" * (plugins.CHUNK * 100_000))
    handle = plugins.ZenodoLike(
        tmp_path / "cache",
        f"file://{big}",
        blocking=False,
        silent=True,
        cancel_grace=None,  # only the job's own thread can stop it
        **with_executor(executor),
    )
    assert wait_until(lambda: (handle.get_state("big.nc").progress or 0) > 0)
    handle.cancel()
    assert handle.wait(10)
    assert handle.get_state("big.nc").status is S.cancelled
    assert not (tmp_path / "cache" / "big.nc.zarr").exists()


def test_close_without_super_after_a_non_blocking_run_leaves_nothing(
    tmp_path, sources, executor
):
    (tmp_path / "downloads").mkdir()
    handle = plugins.ClmsLike(
        {name: {} for name in sources},
        tmp_path,
        plugins.Downloader(sources, tmp_path).preload,
        blocking=False,
        silent=True,
        **with_executor(executor),
    )
    assert handle.wait(30)
    handle.close()
    assert our_processes() == []
    assert {s.status for s in handle.states} == {S.completed}


def test_every_job_failed_and_close_raises(tmp_path, sources, executor):
    # No downloads folder: every download fails, and the subclass's close()
    # raises. The constructor never calls it, so it returns the states.
    handle = plugins.ClmsLike(
        {name: {} for name in sources},
        tmp_path,
        plugins.Downloader(sources, tmp_path).preload,
        silent=True,
        **with_executor(executor),
    )
    assert our_processes() == []
    assert {s.status for s in handle.states} == {S.failed}
    assert all(isinstance(s.exception, FileNotFoundError) for s in handle.states)
    with pytest.raises(FileNotFoundError):
        handle.close()


def test_a_job_that_cancels_the_whole_preload(executor):
    handle = ExecutorPreloadHandle(
        ["quitter", "x", "y"],
        plugins.cancels_all,
        silent=True,
        **with_executor(executor),
    )
    assert handle.cancelled
    assert [s.status for s in handle.states] == [S.completed, S.cancelled, S.cancelled]


def test_a_mock_as_preload_data_runs_on_threads_with_one_warning():
    function = Mock()
    with pytest.warns(RuntimeWarning) as warned:
        handle = ExecutorPreloadHandle(["a", "b"], function, silent=True)
    assert len(warned) == 1
    assert re.fullmatch(
        r"preload_data <Mock id='\d+'> cannot be sent to a worker process:"
        # Unpickling recurses without end (or, with some Python and cloudpickle
        # versions, pickling does).
        r" (RecursionError|PicklingError): .*; its jobs run on threads of this"
        r" process instead",
        str(warned[0].message),
    )
    assert sorted(c.args[1] for c in function.call_args_list) == ["a", "b"]
    assert {s.status for s in handle.states} == {S.completed}


def test_a_mock_is_refused_where_processes_are_asked_for():
    with pytest.raises(TypeError, match=r"Mock.*cannot be sent to a worker process"):
        ExecutorPreloadHandle(["a"], Mock(), silent=True, mp_context="spawn")


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_fork_child_leaves_the_parents_run_alone(tmp_path):
    # The child inherits the engine and the exit hooks; when it exits, they
    # must not cancel (or close) the parent's run.
    handle = ExecutorPreloadHandle(
        ["a", "b"], jobs.gate, blocking=False, silent=True, path=tmp_path
    )
    assert wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 2)
    child = multiprocessing.get_context("fork").Process(target=print)
    child.start()
    child.join(10)
    assert child.exitcode == 0
    assert not handle.cancelled
    (tmp_path / "open").touch()
    assert handle.wait(10)
    assert [s.status for s in handle.states] == [S.completed, S.completed]


def test_a_dropped_handle_runs_its_jobs_to_the_end_then_releases_itself(
    tmp_path, sources
):
    cache = tmp_path / "cache"
    urls = [f"file://{path}" for path in sources.values()]
    plugins.ZenodoLike(cache, *urls, blocking=False, silent=True)
    gc.collect()
    assert wait_until(lambda: len(list(cache.glob("*.zarr"))) == 3, 30)
    assert wait_until(lambda: our_processes() == [], 10)
