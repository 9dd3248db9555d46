"""``ExecutorPreloadHandle``: xcube's preload handle, run by our engine."""

from __future__ import annotations

import contextlib
import inspect
import os
import warnings
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING, Any

from .display import choose_display, detect_mode, format_table
from .display.kernel import interrupted, wait_processing_ui
from .display.notebook import NotebookDisplay
from .engine import Engine, importable_module, uses_threads
from .handle import PreloadHandle
from .limits import Limits
from .retry import check_retry
from .runners import is_dask_client
from .state import PreloadState, check_update
from .states import StateTable
from .validation import (
    check_data_ids,
    check_display,
    check_max_workers,
    check_memory,
    check_mp_context,
    check_params,
    check_seconds,
    pickle_job_function,
)
from .worker import JobFunction, JobHandle, current_job

if TYPE_CHECKING:
    import asyncio

DEFAULT_CANCEL_GRACE = 3.0
"""Seconds a running job gets to stop after a cancel before it is terminated."""


class _Derived:
    """A read-only attribute computed on each access. It is a non-data
    descriptor: a subclass that sets an attribute of the same name keeps its
    own value (a subclass owns its namespace)."""

    def __init__(self, get: Callable[[Any], Any]):
        self._get = get
        self.__doc__ = get.__doc__

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self if instance is None else self._get(instance)


class _Run:
    """What a handle keeps of its run, under one name-mangled attribute.

    Pickled into worker processes (with a subclass's bound ``preload_data``)
    without the engine, which stays in the parent."""

    def __init__(self, data_ids: tuple[str, ...], cancel_grace: float | None):
        self.data_ids = data_ids
        self.token = os.urandom(16).hex()
        self.cancel_grace = cancel_grace
        self.engine: Engine | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "engine": None}

    def parent(self) -> Engine:
        if self.engine is None:
            raise RuntimeError("this copy of the handle is in a worker, outside a job")
        return self.engine


class _StatesView(Mapping):
    """xcube's ``handle._states``: data id -> a snapshot of its state."""

    def __init__(self, table: StateTable):
        self._table = table

    def __getitem__(self, data_id: str) -> PreloadState:
        if data_id not in self._table:
            raise KeyError(data_id)
        return self._table.get(data_id)

    def __iter__(self) -> Iterator[str]:
        return iter([state.data_id for state in self._table.snapshot()])

    def __len__(self) -> int:
        return len(self._table.snapshot())


class ExecutorPreloadHandle(PreloadHandle):
    """Preloads one data resource per data id, concurrently.

    Each job calls ``preload_data(handle, data_id, **preload_params)``, or,
    without *preload_data*, this class's ``preload_data(data_id, **params)``
    as overridden by a subclass. By default the jobs run in worker processes
    of a pool the handle owns; a ``ThreadPoolExecutor`` (or another
    ``Executor``) can be given instead, and is never shut down by the handle.
    A function that cannot be sent to a process (it does not pickle, or does
    not unpickle) runs on threads of this process, with a warning, unless
    processes were asked for (an executor, *mp_context* or *job_timeout*).

    A subclass owns its namespace: the handle keeps its own state under one
    name-mangled attribute and never calls an overridable public method
    (``close``, ``cancel``, ``notify``, ``show``) itself. A run releases its
    processes and threads by itself once every job has ended.

    Args:
        data_ids: the ids of the data resources: unique strs, in any iterable.
        preload_data: the function that preloads one data resource.
        executor: an executor to run the jobs on, instead of our own pool:
            a ``concurrent.futures.Executor``, or a ``distributed.Client`` (each
            job then runs in a process of its own on the cluster's workers).
        blocking: if True, return when every job has ended, with all
            processes and threads released.
        silent: if True, print nothing.
        max_workers: worker processes of our own pool; by default
            min(number of ids, usable CPUs).
        job_timeout: seconds a job may run (our own pool or a dask cluster).
            Past it, the job sees ``cancelled``; still running ``cancel_grace``
            later, it is terminated. It ends FAILED with a ``TimeoutError``.
        max_memory: resident memory a job's processes may hold (its worker
            and the worker's children; our own pool or a dask cluster): bytes,
            or a str such as "2GiB", "500MB", "1.5G". Sampled every ~0.1 s; past it,
            the job is terminated and ends FAILED with a ``MemoryError``.
        cancel_grace: seconds a running job gets to stop after ``cancel()``,
            ``close()`` or its timeout, before its worker is terminated; None
            waits for it.
        retries: how many more times a job that raised one of *retry_on*
            is run, at most.
        retry_on: the exceptions that are retried: a class or a tuple. A
            worker that died or a job stopped for its *job_timeout* count
            only where ``WorkerDiedError`` or ``TimeoutError`` itself is
            named (our own pool or a dask cluster).
        retry_delay: seconds before the first retry, doubling for each
            next one, times a random factor in [0.75, 1.25].
        mp_context: a multiprocessing context or start method name for our
            pool and Manager; by default forkserver (or spawn).
        display: "terminal", "log" or "notebook"; by default chosen from
            where we run (a notebook kernel, a TTY, anything else).
        preload_params: passed to every job. Their names must differ from
            the options above (``OPTIONS``).
    """

    def __init__(
        self,
        data_ids: Iterable[str],
        preload_data: Callable[..., Any] | None = None,
        executor: Executor | None = None,
        blocking: bool = True,
        silent: bool = False,
        *,
        max_workers: int | None = None,
        job_timeout: float | None = None,
        max_memory: int | str | None = None,
        cancel_grace: float | None = DEFAULT_CANCEL_GRACE,
        retries: int = 0,
        retry_on: type[Exception] | tuple[type[Exception], ...] = (OSError,),
        retry_delay: float = 1.0,
        mp_context: BaseContext | str | None = None,
        display: str | None = None,
        **preload_params: Any,
    ):
        ids = check_data_ids(data_ids)
        on_dask = is_dask_client(executor)
        if executor is not None and not (isinstance(executor, Executor) or on_dask):
            raise TypeError(
                "executor must be a concurrent.futures.Executor or a"
                f" distributed.Client, got {executor!r}"
            )
        check_max_workers(max_workers)
        check_seconds("job_timeout", job_timeout)
        memory_limit = check_memory(max_memory)
        check_seconds("cancel_grace", cancel_grace)
        retry = check_retry(retries, retry_on, retry_delay)
        check_mp_context(mp_context)
        check_display(display)
        if on_dask and (max_workers is not None or mp_context is not None):
            raise ValueError(
                "max_workers and mp_context are for the handle's own process pool;"
                " on a dask cluster, its workers run the jobs"
            )
        if job_timeout is not None and executor is not None and not on_dask:
            raise ValueError(
                "job_timeout needs the handle's own process pool (executor=None):"
                " only there can a job that does not stop be terminated"
            )
        if memory_limit is not None and executor is not None and not on_dask:
            raise ValueError(
                "max_memory needs the handle's own process pool (executor=None):"
                " only there can a job's processes be watched and terminated"
            )
        run = self.__run = _Run(ids, cancel_grace)
        function = self.__job_function(preload_data, preload_params)
        check_params(function, OPTIONS)
        function = function._replace(retry=retry)
        owns_executor = False
        if uses_threads(executor):
            payload: bytes | JobFunction = function
        else:
            try:
                payload = pickle_job_function(function)
            except TypeError as exc:
                if executor is not None or any(
                    option is not None
                    for option in (mp_context, job_timeout, memory_limit)
                ):
                    raise
                warnings.warn(
                    f"{exc}; its jobs run on threads of this process instead",
                    RuntimeWarning,
                    stacklevel=2,
                )
                executor = ThreadPoolExecutor(max_workers, "preload-job")
                owns_executor = True
                payload = function
        mode = display or detect_mode()
        make_display = None
        if not silent or mode == "notebook":
            # Silent in a notebook: no output, but show() gets a live panel.
            def make_display(table, running, cancel):
                return choose_display(mode, table, blocking, running, cancel)

        # Known to the handle before any job starts: a job on a thread may
        # use it at once.
        engine = run.engine = Engine(ids, executor, make_display)
        engine.start(
            payload,
            run.token,
            max_workers,
            mp_context,
            Limits(job_timeout, cancel_grace, memory_limit, retry),
            importable_module(function.function),
            owns_executor,
        )
        if blocking and not silent and isinstance(engine.display, NotebookDisplay):
            engine.display.show()
        if blocking:
            in_kernel = isinstance(engine.display, NotebookDisplay)
            try:
                if in_kernel:  # a click on Cancel is handled while we wait
                    wait_processing_ui(engine.table.wait)
                else:
                    engine.table.wait()
            except BaseException as exc:
                open_jobs = len(engine.table.open_ids())
                engine.close(grace=0)
                if in_kernel and isinstance(exc, KeyboardInterrupt):
                    raise interrupted(open_jobs) from None
                raise
            engine.close(cancel_grace)

    def __job_function(
        self, preload_data: Callable[..., Any] | None, params: dict[str, Any]
    ) -> JobFunction:
        if preload_data is not None:
            if not callable(preload_data):
                raise TypeError(f"preload_data must be callable, got {preload_data!r}")
            return JobFunction(preload_data, params, bound=False)
        if type(self).preload_data is ExecutorPreloadHandle.preload_data:
            raise TypeError(
                "give a preload_data function, or override the preload_data() method"
            )
        return JobFunction(self.preload_data, params, bound=True)

    def preload_data(self, data_id: str, **preload_params: Any) -> None:
        """Preload the resource of *data_id*; override this, or pass a function."""
        raise NotImplementedError

    def __job(self) -> JobHandle | None:
        return current_job(self.__run.token)

    @_Derived
    def data_ids(self) -> tuple[str, ...]:
        """The data ids, in the order given."""
        return self.__run.data_ids

    @property
    def cancelled(self) -> bool:
        job = self.__job()
        if job is not None:
            return job.cancelled
        engine = self.__run.engine
        return engine is not None and engine.cancel_requested

    def notify(self, state: PreloadState) -> None:
        """Report a state change; from a job, it goes through the job's channel."""
        job = self.__job()
        if job is not None:
            job.notify(state)
            return
        engine = self.__run.parent()
        engine.notify(check_update(state, self.__run.data_ids))

    def get_state(self, data_id: str) -> PreloadState:
        """A snapshot of the state of the job for *data_id*."""
        job = self.__job()
        if job is not None:
            return job.get_state(data_id)
        table = self.__run.parent().table
        if data_id not in table:
            raise KeyError(f"{data_id!r} is not a data id of this preload")
        return table.get(data_id)

    @_Derived
    def states(self) -> list[PreloadState]:
        """Snapshots of all states, in the order of the data ids."""
        return self.__run.parent().table.snapshot()

    @_Derived
    def _states(self) -> Mapping[str, PreloadState]:
        """xcube's mapping of data id to state (read-only snapshots)."""
        return _StatesView(self.__run.parent().table)

    @_Derived
    def done(self) -> bool:
        """True when every job has ended."""
        return self.__run.parent().table.done

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every job has ended and the run has released its
        processes and threads; False if *timeout* passed first."""
        return self.__run.parent().wait(timeout)

    async def wait_async(self, timeout: float | None = None) -> bool:
        """``wait()`` for async code: the event loop runs on meanwhile (no
        thread waits for it). Cancelling the awaiting task stops the waiting,
        not the jobs."""
        import asyncio  # ~20 ms: not for a worker that imports this module

        loop = asyncio.get_running_loop()
        released = loop.create_future()

        def wake() -> None:  # in the thread that released the run
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(_resolve, released)

        forget = self.__run.parent().when_released(wake)
        try:
            done, _ = await asyncio.wait({released}, timeout=timeout)
            return bool(done)
        finally:
            forget()
            released.cancel()

    def __await__(self) -> Generator[Any, None, None]:
        """``await handle``: wait until every job has ended and the run is
        released, without blocking the event loop."""
        yield from self.wait_async().__await__()

    async def __aenter__(self) -> ExecutorPreloadHandle:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close, in a thread: the event loop runs on during the grace. The
        close goes on if the awaiting task is cancelled."""
        import asyncio

        closing = asyncio.get_running_loop().run_in_executor(None, self.close)
        await asyncio.shield(closing)

    def cancel(self) -> None:
        """Cancel: jobs not started end at once, running jobs see ``cancelled``."""
        job = self.__job()
        if job is not None:
            job.cancel()
        else:
            self.__run.parent().cancel()

    def close(self) -> None:
        """Cancel what still runs and release every process and thread."""
        self.__run.parent().close(self.__run.cancel_grace)

    def show(self) -> None:
        """Show the states: a live panel in a notebook, else the table, printed."""
        display = self.__run.parent().display
        if isinstance(display, NotebookDisplay):
            display.show()
        else:
            print(self.__table())

    @_Derived
    def widget(self) -> Any:
        """The live ipywidgets panel (in a notebook), to embed in a layout."""
        display = self.__run.parent().display
        return display.widget if isinstance(display, NotebookDisplay) else None

    def __table(self, fmt: str = "simple") -> str:
        return format_table(self.__run.parent().table.snapshot(), fmt)

    def __str__(self) -> str:
        return self.__table()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.__table("html")


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


OPTIONS = tuple(
    name
    for name in inspect.signature(ExecutorPreloadHandle.__init__).parameters
    if name not in ("self", "preload_params")
)
"""The handle's own keyword names: a preload function's parameters may not
use them (they would never reach it)."""
