"""``ExecutorPreloadHandle``: xcube's preload handle, run by our engine."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from multiprocessing.context import BaseContext
from typing import Any

from .display import choose_display, detect_mode, format_table
from .display.notebook import NotebookDisplay
from .engine import Engine, importable_module, uses_threads
from .handle import PreloadHandle
from .state import PreloadState, check_update
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
from .worker import JobFunction, current_job

DEFAULT_CANCEL_GRACE = 3.0
"""Seconds a running job gets to stop after a cancel before it is terminated."""


class ExecutorPreloadHandle(PreloadHandle):
    """Preloads one data resource per data id, concurrently.

    Each job calls ``preload_data(handle, data_id, **preload_params)``, or,
    without *preload_data*, this class's ``preload_data(data_id, **params)``
    as overridden by a subclass. By default the jobs run in worker processes
    of a pool the handle owns; a ``ThreadPoolExecutor`` (or another
    ``Executor``) can be given instead, and is never shut down by the handle.

    Args:
        data_ids: the ids of the data resources, unique.
        preload_data: the function that preloads one data resource.
        executor: an executor to run the jobs on, instead of our own pool.
        blocking: if True, return when every job has ended, with all
            processes and threads released.
        silent: if True, print nothing.
        max_workers: worker processes of our own pool; by default
            min(number of ids, usable CPUs).
        job_timeout: seconds a job may run (our own pool only). Past it, the
            job sees ``cancelled``; still running ``cancel_grace`` later, it is
            terminated. It ends FAILED with a ``TimeoutError``.
        max_memory: resident memory a job's processes may hold (its worker
            and the worker's children; our own pool only): bytes, or a str
            such as "2GiB", "500MB", "1.5G". Sampled every ~0.1 s; past it,
            the job is terminated and ends FAILED with a ``MemoryError``.
        cancel_grace: seconds a running job gets to stop after ``cancel()``,
            ``close()`` or its timeout, before its worker is terminated; None
            waits for it.
        mp_context: a multiprocessing context or start method name for our
            pool and Manager; by default forkserver (or spawn).
        display: "terminal", "log" or "notebook"; by default chosen from
            where we run (a notebook kernel, a TTY, anything else).
        preload_params: passed to every job.
    """

    def __init__(
        self,
        data_ids: Sequence[str],
        preload_data: Callable[..., Any] | None = None,
        executor: Executor | None = None,
        blocking: bool = True,
        silent: bool = False,
        *,
        max_workers: int | None = None,
        job_timeout: float | None = None,
        max_memory: int | str | None = None,
        cancel_grace: float | None = DEFAULT_CANCEL_GRACE,
        mp_context: BaseContext | str | None = None,
        display: str | None = None,
        **preload_params: Any,
    ):
        ids = check_data_ids(data_ids)
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(
                f"executor must be a concurrent.futures.Executor, got {executor!r}"
            )
        check_max_workers(max_workers)
        check_seconds("job_timeout", job_timeout)
        memory_limit = check_memory(max_memory)
        check_seconds("cancel_grace", cancel_grace)
        check_mp_context(mp_context)
        check_display(display)
        if job_timeout is not None and executor is not None:
            raise ValueError(
                "job_timeout needs the handle's own process pool (executor=None):"
                " only there can a job that does not stop be terminated"
            )
        if memory_limit is not None and executor is not None:
            raise ValueError(
                "max_memory needs the handle's own process pool (executor=None):"
                " only there can a job's processes be watched and terminated"
            )
        self._data_ids = ids
        self._token = uuid.uuid4().hex
        self._cancel_grace = cancel_grace
        function = self._job_function(preload_data, preload_params)
        check_params(function)
        payload = function if uses_threads(executor) else pickle_job_function(function)
        mode = display or detect_mode()
        make_display = None
        if not silent or mode == "notebook":
            # Silent in a notebook: no output, but show() gets a live panel.
            def make_display(table, running, cancel):
                return choose_display(mode, table, blocking, running, cancel)

        self._engine: Engine | None = Engine(
            ids,
            payload,
            self._token,
            executor,
            max_workers,
            mp_context,
            job_timeout,
            cancel_grace,
            make_display,
            importable_module(function.function),
            max_memory=memory_limit,
        )
        if (
            blocking
            and not silent
            and isinstance(self._engine.display, NotebookDisplay)
        ):
            self._engine.display.show()
        if blocking:
            try:
                self._engine.table.wait()
            except BaseException:
                self._engine.close(grace=0)
                raise
            self.close()

    def _job_function(
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

    # A subclass's preload_data() runs in worker processes with a copy of the
    # handle: it pickles without the engine, which stays in the parent.
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_engine"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._engine = None

    def _parent(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("this copy of the handle is in a worker, outside a job")
        return self._engine

    @property
    def data_ids(self) -> tuple[str, ...]:
        return self._data_ids

    @property
    def cancelled(self) -> bool:
        job = current_job(self._token)
        if job is not None:
            return job.cancelled
        return self._engine is not None and self._engine.cancel_requested

    def notify(self, state: PreloadState) -> None:
        """Report a state change; from a job, it goes through the job's channel."""
        job = current_job(self._token)
        if job is not None:
            job.notify(state)
            return
        engine = self._parent()
        check_update(state, self._data_ids)
        engine.notify(state)

    def get_state(self, data_id: str) -> PreloadState:
        """A snapshot of the state of the job for *data_id*."""
        job = current_job(self._token)
        if job is not None:
            return job.get_state(data_id)
        if data_id not in self._parent().table:
            raise KeyError(f"{data_id!r} is not a data id of this preload")
        return self._parent().table.get(data_id)

    @property
    def states(self) -> list[PreloadState]:
        """Snapshots of all states, in the order of the data ids."""
        return self._parent().table.snapshot()

    @property
    def done(self) -> bool:
        """True when every job has ended."""
        return self._parent().table.done

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every job has ended; False if *timeout* passed first."""
        return self._parent().table.wait(timeout)

    def cancel(self) -> None:
        """Cancel: jobs not started end at once, running jobs see ``cancelled``."""
        job = current_job(self._token)
        if job is not None:
            job.cancel()
        else:
            self._parent().cancel()

    def close(self) -> None:
        """Cancel what still runs and release every process and thread."""
        self._parent().close(self._cancel_grace)

    def show(self) -> None:
        """Show the states: a live panel in a notebook, else the table, printed."""
        display = self._parent().display
        if isinstance(display, NotebookDisplay):
            display.show()
        else:
            print(self)

    @property
    def widget(self) -> Any:
        """The live ipywidgets panel (in a notebook), to embed in a layout."""
        display = self._parent().display
        return display.widget if isinstance(display, NotebookDisplay) else None

    def __str__(self) -> str:
        return format_table(self.states)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return format_table(self.states, "html")
