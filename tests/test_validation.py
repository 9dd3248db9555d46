"""Bad input fails before any process starts."""

import math
import re
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from preload import ExecutorPreloadHandle, PreloadState

import jobs
from conftest import our_processes


def closure_over_a_lock():
    lock = threading.Lock()

    def uses_a_lock(handle, data_id):
        with lock:
            pass

    return uses_a_lock


def guarded(handle, data_id, guard):
    with guard:
        pass


def make_handle(*args, **kwargs):
    before = {p.pid for p in our_processes()}
    try:
        return ExecutorPreloadHandle(*args, silent=True, **kwargs)
    finally:
        assert {p.pid for p in our_processes()} <= before, "a process was started"


@pytest.mark.parametrize(
    ("data_ids", "error", "match"),
    [
        ("a.nc", TypeError, "iterable of str, got str"),
        (b"a.nc", TypeError, "iterable of str, got bytes"),
        (5, TypeError, "iterable of str, got int"),
        (["a", 1], TypeError, "non-empty strs"),
        (["a", ""], TypeError, "non-empty strs"),
        (["a", "b", "a", "c", "b"], ValueError, "duplicate data ids: a, b"),
    ],
)
def test_bad_data_ids(data_ids, error, match):
    with pytest.raises(error, match=match):
        make_handle(data_ids, jobs.ticks)


def test_function_must_be_callable():
    with pytest.raises(TypeError, match="must be callable"):
        make_handle(["a"], "jobs.ticks")


def test_function_or_override_is_needed():
    with pytest.raises(TypeError, match="override the preload_data"):
        make_handle(["a"])


@pytest.mark.parametrize(
    "processes",
    [
        {"mp_context": "spawn"},
        {"job_timeout": 5},
        {"executor": "process pool"},
    ],
    ids=["mp_context", "job_timeout", "executor"],
)
def test_function_that_cannot_be_sent_is_named_where_processes_are_asked_for(
    processes,
):
    if processes.get("executor"):
        processes["executor"] = ProcessPoolExecutor(1)
    try:
        with pytest.raises(TypeError, match=r"uses_a_lock.*cannot be sent.*lock"):
            make_handle(["a"], closure_over_a_lock(), **processes)
    finally:
        if "executor" in processes:
            processes["executor"].shutdown()


def test_parameter_that_cannot_be_sent_is_named():
    with pytest.raises(TypeError, match=r"parameter 'guard' cannot be sent.*lock"):
        make_handle(["a"], jobs.notify, mp_context="spawn", guard=threading.Lock())


def test_function_that_cannot_be_sent_runs_on_threads_with_one_warning():
    with pytest.warns(RuntimeWarning) as warned:
        handle = make_handle(["a", "b"], closure_over_a_lock())
    assert len(warned) == 1
    assert re.match(
        r"preload_data .*uses_a_lock.* cannot be sent to a worker process: "
        r"TypeError: cannot pickle '_thread.lock' object; its jobs run on threads",
        str(warned[0].message),
    )
    assert [s.status.name for s in handle.states] == ["completed", "completed"]


@pytest.mark.parametrize("name", ["blocking", "silent", "job_timeout", "executor"])
def test_a_parameter_named_like_an_option_is_refused(name):
    namespace: dict = {}
    exec(f"def download(handle, data_id, {name}=None): pass", namespace)
    with pytest.raises(TypeError, match=f"parameter '{name}', which is an option"):
        make_handle(["a"], namespace["download"])


def test_timeout_is_a_parameter_of_the_function():
    def download(handle, data_id, timeout=None):
        handle.notify(PreloadState(data_id, message=f"timeout={timeout}"))

    with ThreadPoolExecutor(1) as executor:
        handle = make_handle(["a"], download, executor, timeout=30)
    assert handle.get_state("a").message == "timeout=30"


@pytest.mark.parametrize(
    "data_ids",
    [
        lambda: {"b", "a"},
        lambda: {"a": 1, "b": 2}.keys(),
        lambda: {"a": 1, "b": 2},
        lambda: (i for i in "ab"),
    ],
    ids=["set", "keys", "dict", "generator"],
)
def test_any_iterable_of_unique_strs(data_ids):
    ids = data_ids()
    expected = sorted(ids) if isinstance(ids, set) else ["a", "b"]
    with ThreadPoolExecutor(2) as executor:
        handle = make_handle(ids, jobs.ticks, executor, n=1)
    assert sorted(handle.data_ids) == expected
    assert {s.status.name for s in handle.states} == {"completed"}


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n": 1, "size": 2}, r"ticks\(\): got an unexpected keyword argument 'size'"),
        ({"to_id": "b", "progress": 0.5, "handle": 1}, "multiple values.*'handle'"),
    ],
)
def test_parameters_the_function_does_not_take(params, match):
    function = jobs.notify if "to_id" in params else jobs.ticks
    with pytest.raises(TypeError, match=match):
        make_handle(["a"], function, **params)


def test_the_function_checks_its_parameter_values():
    def scaled(handle, data_id, factor=1):
        pass

    def check_params(factor=1):
        if factor <= 0:
            raise ValueError(f"factor must be > 0, got {factor}")

    scaled.check_params = check_params
    with pytest.raises(ValueError, match="factor must be > 0, got -2"):
        make_handle(["a"], scaled, factor=-2)


def test_a_missing_parameter_is_named():
    def needs_folder(handle, data_id, *, folder):
        pass

    with pytest.raises(TypeError, match=r"needs_folder\(\): missing .*'folder'"):
        make_handle(["a"], needs_folder)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"executor": "threads"}, TypeError, "Executor"),
        ({"max_workers": 0}, ValueError, "max_workers"),
        ({"max_workers": 1.5}, TypeError, "max_workers"),
        ({"cancel_grace": -1}, ValueError, "cancel_grace"),
        ({"cancel_grace": math.inf}, ValueError, "cancel_grace must be a finite"),
        ({"cancel_grace": math.nan}, ValueError, "cancel_grace must be a finite"),
        ({"job_timeout": math.inf}, ValueError, "job_timeout must be a finite"),
        ({"job_timeout": -0.5}, ValueError, "job_timeout must be a finite"),
        ({"cancel_grace": "1"}, TypeError, "cancel_grace"),
        ({"mp_context": 3}, TypeError, "mp_context"),
    ],
)
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_handle(["a"], jobs.ticks, **kwargs)


def test_threads_need_no_pickling():
    with ThreadPoolExecutor(1) as executor:
        handle = make_handle(["a"], guarded, executor, guard=threading.Lock())
    assert handle.get_state("a").status.name == "completed"


def test_empty_data_ids_are_done_at_once():
    with make_handle([], jobs.ticks, blocking=False) as handle:
        assert handle.done
        assert handle.wait(0)
        assert handle.states == []


def test_display_must_be_a_known_mode():
    with pytest.raises(ValueError, match="display must be one of terminal, log"):
        make_handle(["a"], jobs.ticks, display="tty")
