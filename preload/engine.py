"""The parent side of one preload run: channel, runner, collector, states.

Who owns what:
* the runner runs the jobs (``runners/``): a ``PoolRunner`` on process
  pools the engine owns, or an ``ExecutorRunner`` on an executor the caller
  gave (used, never shut down) or on threads of our own;
* the channel carries the jobs' messages and the cancel flag (see
  ``channel.py``); the engine makes it to fit the executor;
* the executor's done callbacks pass each job's outcome to the collector;
* the collector thread is the only writer of the ``StateTable``.

A run releases itself: once every job has ended, a short-lived thread
releases the runner, the channel and the collector, whether or not anybody
calls ``close()``. An engine still open when the interpreter exits is closed
then, with no grace, before ``concurrent.futures`` waits for its pools'
workers. Only the process that made an engine closes or cancels it: a child
made with fork inherits the engine and its exit hooks, and must leave the
parent's run alone.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from multiprocessing.context import BaseContext
from types import FrameType
from typing import Any

from .channel import Channel, ManagerChannel, PipeChannel, ThreadChannel
from .collector import Collector
from .display import Display
from .limits import Limits
from .runners import is_dask_client
from .runners.executor import ExecutorRunner
from .runners.pool import PoolRunner
from .state import PreloadState, PreloadStatus
from .states import StateTable
from .worker import Job, JobFunction

MakeDisplay = Callable[
    [StateTable, Callable[[], dict[str, int]] | None, Callable[[], None]], Display
]
"""Makes a run's display from its states, the pids of running jobs (None
where unknown) and the run's cancel()."""


def default_mp_context() -> BaseContext:
    """forkserver where there is (it never forks a process with threads), else
    spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def prepare_forkserver(context: BaseContext, modules: Sequence[str] = ()) -> None:
    """If *context* starts processes from a forkserver not yet running: have
    it import up front what every worker needs, and *modules*."""
    if context.get_start_method() != "forkserver":
        return
    # cloudpickle: a job function sent by value (defined in a notebook or a
    # script) needs it to unpickle, in every worker (~15 ms each). The
    # multiprocessing modules: what a worker needs to unpickle its start
    # (shared arrays, with ctypes; the pool's locks; the file descriptors the
    # forkserver passes): ~4 ms of CPU a worker; pkgutil: runpy imports it to
    # run a script's top level again in a worker.
    ours = [
        "preload.runners.in_worker",
        "cloudpickle",
        "multiprocessing.sharedctypes",
        "multiprocessing.synchronize",
        "multiprocessing.popen_forkserver",
        "pkgutil",
    ]
    _preload_in_forkserver([*ours, *_main_modules(), *modules])


def _main_modules() -> list[str]:
    """The modules of what ``__main__`` holds at its top level, where each
    worker runs that top level again (a script, or a module run with -m) and
    so imports them: better once, in the forkserver (this package's handle
    side: ~20 ms a worker; xarray: ~0.5 s). CPython's forkserver preloads
    ``__main__`` itself only since the fix of gh-126631 (3.13.8, 3.14)."""
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    if spec is not None:  # run with -m: a package's __main__ is not run again
        if spec.name.endswith("__main__"):
            return []
    elif getattr(main, "__file__", None) is None:  # interactive, a notebook
        return []
    names = set()
    for key, value in list(vars(main).items()):
        if key.startswith("__"):  # __builtins__, __loader__, __spec__
            continue
        try:
            if isinstance(value, types.ModuleType):
                name = value.__name__
            else:
                name = getattr(value, "__module__", None)
        except Exception:  # an object that will not say
            continue
        if isinstance(name, str) and name in sys.modules:
            names.add(name)
    names.difference_update(("__main__", "__mp_main__"))
    return sorted(names)


def _preload_in_forkserver(modules: Sequence[str]) -> None:
    # A forkserver that has imported the worker module starts each worker
    # and Manager in ~12 ms instead of ~80 ms; one that has imported the job
    # function's module spares every worker that import (xarray and zarr for
    # preload.convert: ~0.9 s a worker). Keep what is preloaded already (by
    # default __main__); this takes effect if the forkserver is not running.
    # A module it cannot import (on 3.11 the forkserver has a fresh
    # interpreter's sys.path, without changes made at runtime) is skipped;
    # the workers import it themselves then.
    from multiprocessing import forkserver

    preloaded = getattr(forkserver._forkserver, "_preload_modules", None)
    if preloaded is None:
        return
    missing = [m for m in modules if m not in preloaded]
    if missing:
        forkserver.set_forkserver_preload([*preloaded, *missing])


def _start_forkserver(context: BaseContext) -> None:
    # A forkserver not yet running starts now (a fresh interpreter and its
    # imports: the better part of a cold start), while this process sets up
    # the run, not after: its first worker is asked for only then.
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def importable_module(function: Callable[..., Any]) -> str | None:
    """The module a worker imports to find *function*, if it has one: not
    ``__main__``, and already imported here (so importing it succeeds)."""
    name = getattr(function, "__module__", None)
    module = sys.modules.get(name) if name else None
    if name == "__main__" or getattr(module, "__file__", None) is None:
        return None
    return name


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the system keeps one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def uses_threads(executor: Executor | None) -> bool:
    """True if *executor* runs jobs in threads of this process."""
    return isinstance(executor, ThreadPoolExecutor)


@contextlib.contextmanager
def _ctrl_c_held(on_ctrl_c: Callable[[], None]) -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back while the block runs in the main thread; if
    it came, call *on_ctrl_c*, then pass it on to its handler."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous is None:
        # Signals reach only the main thread; None: a handler not set from
        # Python, which we could not put back.
        yield
        return
    frames: list[FrameType | None] = []
    signal.signal(signal.SIGINT, lambda _, frame: frames.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if frames:
            on_ctrl_c()
            if callable(previous):
                previous(signal.SIGINT, frames[0])
            elif previous == signal.SIG_DFL:
                signal.raise_signal(signal.SIGINT)


def _holds_ctrl_c(method: Callable[..., None]) -> Callable[..., None]:
    """An Engine method, with Ctrl-C held back while it starts processes and
    threads (one that lands half-way leaves some that nobody closes); if it
    came, the engine is closed, then it is raised."""

    @functools.wraps(method)
    def wrapper(self: Engine, *args: Any, **kwargs: Any) -> None:
        def close() -> None:
            if hasattr(self, "collector"):  # else nothing was started
                self.close(grace=0)

        with _ctrl_c_held(close):
            method(self, *args, **kwargs)

    return wrapper


class Engine:
    """Runs one job per data id and keeps their states."""

    @_holds_ctrl_c
    def __init__(
        self,
        data_ids: Sequence[str],
        executor: Executor | None,
        make_display: MakeDisplay | None,
    ):
        self.table = StateTable(data_ids)
        self._data_ids = data_ids
        self._executor = executor
        self._pid = os.getpid()
        self._cancelled = threading.Event()
        self._release_lock = threading.Lock()
        self._released = False
        self._releaser: threading.Thread | None = None
        self._when_released: list[Callable[[], None]] = []
        self._when_released_lock = threading.Lock()
        self._cancel_grace: float | None = None
        self.channel: Channel | None = None
        self._runner: PoolRunner | ExecutorRunner | None = None
        self.display = None
        if make_display is not None:
            ours = executor is None or is_dask_client(executor)
            running = self._running_pids if ours else None
            self.display = make_display(self.table, running, self.cancel)
        self.collector = Collector(self.table, self.display, self._release_soon)

    @_holds_ctrl_c
    def start(
        self,
        function: bytes | JobFunction,
        token: str,
        max_workers: int | None,
        mp_context: BaseContext | str | None,
        limits: Limits,
        function_module: str | None = None,
        owns_executor: bool = False,
    ) -> None:
        """Start the channel and the runner: the jobs begin."""
        data_ids, executor = self._data_ids, self._executor
        self._cancel_grace = limits.grace
        if not data_ids:
            self._release(0)
            return
        _open_engines.add(self)
        try:
            ids = frozenset(data_ids)
            jobs = [Job(i, d, function) for i, d in enumerate(data_ids)]
            if is_dask_client(executor):
                from .runners.dask import DaskChannel, DaskRunner

                self.channel = DaskChannel(executor, ids, token)
                self.channel.start(self.collector.deliver, self._channel_lost)
                self._runner = DaskRunner(
                    executor,
                    jobs,
                    self.channel,
                    self.collector,
                    limits,
                    function_module,
                )
                return
            if uses_threads(executor):
                self.channel = ThreadChannel(ids, token)
            else:
                if isinstance(mp_context, str):
                    mp_context = multiprocessing.get_context(mp_context)
                context = mp_context or default_mp_context()
                prepare_forkserver(
                    context, [function_module] if function_module else []
                )
                if executor is None:
                    _start_forkserver(context)
                    self.channel = PipeChannel(ids, token, context)
                else:
                    self.channel = ManagerChannel(ids, token, context)
            self.channel.start(self.collector.deliver, self._channel_lost)
            if executor is None:
                self._runner = PoolRunner(
                    jobs,
                    self.channel,
                    context,
                    max_workers or min(len(jobs), usable_cpus()),
                    self.collector,
                    self.table,
                    limits,
                )
            else:
                self._runner = ExecutorRunner(
                    executor, jobs, self.channel, self.collector, owns_executor
                )
        except BaseException:
            if owns_executor:
                executor.shutdown(wait=False, cancel_futures=True)
            self.close(grace=0)
            raise

    def _running_pids(self) -> dict[str, Any]:
        runner = self._runner
        return runner.running_pids() if hasattr(runner, "running_pids") else {}

    @property
    def cancel_requested(self) -> bool:
        """True once the run is cancelled; asked by a thread that runs no job."""
        channel = self.channel
        requested = self._cancelled.is_set() or (
            channel is not None and channel.cancel_requested()
        )
        if requested and channel is not None:
            channel.end.cancel_seen_outside_jobs = True
        return requested

    def notify(self, state: PreloadState) -> None:
        """Apply a state change reported from outside the jobs."""
        self.collector.post_update(state)

    def cancel(self) -> None:
        """Raise the cancel flag and cancel the jobs that have not started."""
        if os.getpid() != self._pid:
            return
        self._cancelled.set()
        if self._released:
            return
        if isinstance(self._runner, PoolRunner):
            # Its jobs see their stop flags at once; it raises the channel's
            # flag (a Manager round trip) in the background.
            self._runner.cancel()
        else:
            if self.channel is not None:
                self.channel.cancel()
            if self._runner is not None:
                self._runner.cancel()
        self.collector.sync(timeout=1.0)

    def close(self, grace: float | None) -> None:
        """Cancel, give running jobs *grace* seconds, then release everything.

        Interrupted while it waits (Ctrl-C), the engine stays open: the exit
        hook closes it then, with no grace."""
        if os.getpid() != self._pid:
            return
        if not self.table.done:
            self.cancel()
            self.table.wait(grace)
        self._release(grace)
        self._released_in_time(None)

    def wait(self, timeout: float | None) -> bool:
        """Wait until every job has ended and the run is released; False if
        *timeout* passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self.table.wait(timeout):
            return False
        return self._released_in_time(
            None if deadline is None else deadline - time.monotonic()
        )

    def _released_in_time(self, timeout: float | None) -> bool:
        """Wait for the release under way, if any; then show the final state
        once more from this thread (see ``Collector.redraw``)."""
        releaser = self._releaser
        if releaser is not None and releaser is not threading.current_thread():
            releaser.join(timeout)
            if releaser.is_alive():
                return False
        self.collector.redraw()
        return True

    def when_released(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call *callback* (in the releasing thread, or here if the run is
        released already) once the run is released; returns a function that
        forgets it."""
        with self._when_released_lock:
            released = self._released
            if not released:
                self._when_released.append(callback)
        if released:
            callback()

        def forget() -> None:
            with self._when_released_lock, contextlib.suppress(ValueError):
                self._when_released.remove(callback)

        return forget

    def _release_soon(self) -> None:
        # In the collector thread, once every job has ended: release from
        # another thread, since releasing joins the collector.
        self._releaser = threading.Thread(
            target=self._release,
            args=(self._cancel_grace,),
            name="preload-release",
            daemon=True,
        )
        self._releaser.start()

    def _release(self, grace: float | None) -> None:
        """Release the runner (giving jobs still running at most *grace*
        seconds), the channel and the collector, once; a second caller waits
        until the first is done."""
        with self._release_lock:
            if not self._released:
                self._release_now(grace)

    def _release_now(self, grace: float | None) -> None:
        if self.channel is not None and self.channel.cancel_requested():
            self._cancelled.set()  # a job cancelled the run: keep it known
        if self._runner is not None:
            self._runner.close(grace)
        if self.channel is not None:
            self.channel.close()
        # Still running in a caller's executor, which we may not stop; or
        # never submitted (Ctrl-C while the run started).
        message = (
            "still running when the handle was closed"
            if isinstance(self._runner, ExecutorRunner)
            else None
        )
        for data_id in self.table.open_ids():
            self.collector.post_update(
                PreloadState(data_id, PreloadStatus.cancelled, message=message)
            )
        self.collector.stop()
        # Drop what holds pipes and sockets now, not at the next garbage
        # collection (futures and their callbacks make reference cycles).
        self._runner = self.channel = None
        with self._when_released_lock:
            self._released = True
            callbacks, self._when_released = self._when_released, []
        _open_engines.discard(self)
        for callback in callbacks:
            callback()

    def _channel_lost(self, error: Exception) -> None:
        # In the channel's receiver thread: no job can report or be
        # cancelled any more; end them all, with the reason.
        self.collector.channel_lost()
        for data_id in self.table.open_ids():
            self.collector.post_update(
                PreloadState(data_id, PreloadStatus.failed, exception=error)
            )
        if self._runner is not None:
            self._runner.abort()


_open_engines: set[Engine] = set()


def _close_open_engines() -> None:
    for engine in list(_open_engines):
        engine.close(grace=0)


# A child made with fork inherits the set, and its exit runs this module's
# hooks: the parent's engines are not the child's to close.
os.register_at_fork(after_in_child=_open_engines.clear)


# Run before concurrent.futures' own exit hook, which waits for running jobs
# (hooks registered later run first).
_register = getattr(threading, "_register_atexit", None)
if _register is not None:
    _register(_close_open_engines)
else:  # pragma: no cover - every CPython we support has it
    import atexit

    atexit.register(_close_open_engines)
