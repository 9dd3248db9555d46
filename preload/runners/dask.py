"""Jobs on a dask.distributed cluster: the parent side of the dask runner.

Imported only when a ``distributed.Client`` is given. Each job is one dask
task (``dask_worker.run_dask_job``), which runs the job in a process of its
own on the worker and supervises it; see ``dask_worker.py``.

The channel (``DaskChannel``):
* messages: the tasks log each batch as a dask event on the run's topic; the
  client's subscription (its event-loop thread) hands them to the collector.
  Tasks also report there which host and process run a job, and its CPU and
  memory, for the displays;
* cancel flag: ``cancel()`` broadcasts ``raise_flag`` to every worker with
  ``client.run`` (from a thread of ours: it is a round trip); each worker tells
  its jobs' processes through their pipes, where ``handle.cancelled`` is a
  local read.

The runner (``DaskRunner``) submits the jobs, collects their outcomes in a
thread of its own, and, at close, kills what still runs (``kill``), cancels
what is queued, and leaves the cluster as it found it: it drops what the
workers keep of the run (``forget``), the job function it scattered, its
subscription and its topic on the scheduler.
"""

from __future__ import annotations

import contextlib
import pickle
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError

from distributed import Client, LocalCluster, as_completed
from distributed import Future as DaskFuture
from distributed.scheduler import KilledWorker

from ..channel import Channel, Lost
from ..collector import Collector
from ..display.insight import Sample
from ..errors import ResultLostError, WorkerDiedError, describe
from ..limits import Limits
from ..outbox import Send
from ..state import PreloadStatus
from ..worker import CANCELLED, Job, Outcome
from . import dask_worker
from .dask_child import DaskEnd
from .dask_worker import (
    EV_BEGIN,
    EV_INSIGHT,
    EV_MESSAGES,
    EV_RUN_CANCEL,
    run_dask_job,
    topic,
)

CLOSE_WAIT = 10.0
"""Seconds close() waits for the tasks it killed or cancelled to end."""

WINDOW = 1000
"""Jobs submitted at a time: the next is submitted as one ends, so that the
parent's client (~4 KB a future) and the scheduler hold a bounded number of
tasks, however many ids."""


class DaskChannel(Channel):
    """Messages as dask events on the run's topic; the cancel flag broadcast
    to the workers."""

    def __init__(self, client: Client, data_ids: frozenset[str], token: str):
        self.end = DaskEnd(data_ids, token)
        self.topic = topic(token)
        self.where: dict[int, tuple[str, int]] = {}  # job index -> host, pid
        self.usage: dict[int, tuple[float, int]] = {}  # job index -> CPU %, bytes
        self._client = client
        self._deliver: Send | None = None
        self._cancelled = threading.Event()
        self._broadcasts: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._broadcast, name="preload-dask", daemon=True
        )
        self._thread.start()

    def start(self, deliver: Send, lost: Lost) -> None:
        self._deliver = deliver
        # Before any job is submitted: the subscription and the jobs travel
        # to the scheduler in order.
        self._client.subscribe_topic(self.topic, self._on_event)

    def _on_event(self, event: tuple[float, list]) -> None:
        # In the client's event-loop thread: quick, never blocks.
        msg = event[1]
        kind = msg[0]
        if kind == EV_MESSAGES:
            self._deliver(pickle.loads(msg[1]))
        elif kind == EV_BEGIN:
            self.where[msg[1]] = (msg[2], msg[3])
        elif kind == EV_INSIGHT:
            self.usage[msg[1]] = (msg[2], msg[3])
        elif kind == EV_RUN_CANCEL:
            self.cancel()

    def cancel(self) -> None:
        if not self._cancelled.is_set():
            self._cancelled.set()
            self.end.stop()
            self.post(self.on_workers, dask_worker.raise_flag, self.end.token)

    def cancel_requested(self) -> bool:
        return self._cancelled.is_set()

    def post(self, function: Callable[..., object], *args: object) -> None:
        """Call *function* with *args* in the channel's thread (the round
        trips to the cluster that cancel() must not wait for)."""
        self._broadcasts.put((function, args))

    def on_workers(self, function: Callable[..., object], *args: object) -> dict:
        """``client.run`` on every worker; a worker that fails is left out."""
        return self._client.run(function, *args, on_error="return")

    def _broadcast(self) -> None:
        while True:
            item = self._broadcasts.get()
            if item is None:
                return
            function, args = item
            with contextlib.suppress(Exception):  # a closing cluster
                function(*args)

    def flush(self) -> None:
        """Make the broadcasts posted so far, and end the channel's thread."""
        if self._thread.is_alive():
            self._broadcasts.put(None)
            self._thread.join()

    def close(self) -> None:
        self.flush()
        # Not client.unsubscribe_topic(): it keeps the client's handler, and
        # its message, which travels apart from run_on_scheduler's, could
        # reach the scheduler later and make the topic anew there.
        self._client._event_handlers.pop(self.topic, None)
        with contextlib.suppress(Exception):
            self._client.run_on_scheduler(_drop_topic, self.topic)


def _drop_topic(name: str, dask_scheduler) -> None:
    # The topic, its subscription and its recent events (the scheduler keeps
    # them), of no use once the run is over.
    dask_scheduler._broker._topics.pop(name, None)


class DaskRunner:
    """Runs jobs as dask tasks; each job in a process of its own."""

    def __init__(
        self,
        client: Client,
        jobs: list[Job],
        channel: DaskChannel,
        collector: Collector,
        limits: Limits,
        function_module: str | None = None,
    ):
        self._client = client
        self._jobs = jobs
        self._channel = channel
        self._collector = collector
        # The function and its parameters travel to each worker once.
        self._function = client.scatter(jobs[0].function, hash=False)
        self._task_args = {
            "end": channel.end,
            "function": self._function,
            "limits": limits,
            # Imported once per worker, by the helper that forks job processes.
            "modules": (function_module,) if function_module else (),
        }
        self._lock = threading.Lock()
        self._posted: set[int] = set()
        self._futures: dict[int, DaskFuture] = {}  # submitted
        self._stopped = False  # submits no more
        self._next = min(WINDOW, len(jobs))  # the next job to submit
        self._completed = as_completed(self._submit(range(self._next)))
        self._thread = threading.Thread(
            target=self._collect, name="preload-dask-outcomes", daemon=True
        )
        self._thread.start()

    def _submit(self, indexes: range) -> list[DaskFuture]:
        # With the lock held, or before the outcomes thread starts.
        token = self._channel.end.token
        futures = self._client.map(
            run_dask_job,
            [self._jobs[i]._replace(function=None) for i in indexes],
            **self._task_args,
            key=[f"preload-{token}-{i}" for i in indexes],
            pure=False,
            retries=0,
        )
        self._futures.update(zip(indexes, futures, strict=True))
        return futures

    def _post(self, index: int, outcome: Outcome) -> None:
        with self._lock:
            if index in self._posted:
                return
            self._posted.add(index)
        self._channel.where.pop(index, None)
        self._channel.usage.pop(index, None)
        self._collector.post_outcome(self._jobs[index].data_id, outcome)

    def _collect(self) -> None:
        # At most WINDOW tasks at a time: the next job is submitted as one ends.
        for future in self._completed:
            index = int(future.key.rsplit("-", 1)[1])
            self._post(index, self._outcome(index, future))
            with self._lock:
                self._futures.pop(index, None)
                if not self._stopped and self._next < len(self._jobs):
                    self._next += 1
                    with contextlib.suppress(Exception):  # a closing client
                        self._completed.update(
                            self._submit(range(self._next - 1, self._next))
                        )

    def _outcome(self, index: int, future: DaskFuture) -> Outcome:
        failed = PreloadStatus.failed.value
        try:
            if future.status == "cancelled":
                raise CancelledError
            return future.result()
        except CancelledError:
            # Also as result() raises it: the status may turn while we look.
            if self._stopped:
                return CANCELLED
            return Outcome(
                failed,
                RuntimeError(
                    "its dask task was cancelled outside the run (the client closed,"
                    " or the scheduler lost it)"
                ),
            )
        except Exception as exc:
            if isinstance(exc, KilledWorker):
                return Outcome(
                    failed,
                    WorkerDiedError(
                        f"the dask workers that ran {self._jobs[index].data_id!r}"
                        f" died: {exc}"
                    ),
                )
            if future.status == "error" and not isinstance(exc, pickle.UnpicklingError):
                return Outcome(failed, exc)
            return Outcome(
                failed,
                ResultLostError(
                    f"{self._jobs[index].data_id!r} ended on its worker, but its"
                    f" result could not be received: {describe(exc)}"
                ),
            )

    def running_pids(self) -> dict[str, Sample]:
        """Data id -> where it runs, its CPU and memory (as its worker last
        reported them), for each running job; for the displays."""
        where, usage = self._channel.where, self._channel.usage
        samples = {}
        for index, (host, pid) in list(where.items()):
            if index not in self._posted:
                cpu, rss = usage.get(index, (None, None))
                samples[self._jobs[index].data_id] = Sample(cpu, rss, f"{host} {pid}")
        return samples

    def cancel(self) -> None:
        """Jobs not begun end CANCELLED now (their tasks are cancelled, the
        rest never submitted); running ones see ``cancelled`` (the channel's
        broadcast)."""
        begun = set(self._channel.where)
        with self._lock:
            self._stopped = True
            queued = {
                i: f
                for i, f in self._futures.items()
                if i not in begun and not f.done()
            }
            never = range(self._next, len(self._jobs))
        for index in [*queued, *never]:
            self._post(index, CANCELLED)
        if queued:
            self._channel.post(self._client.cancel, list(queued.values()))

    def close(self, grace: float | None) -> None:
        """Kill what still runs (the engine gave it its grace already), cancel
        what is queued, wait for the tasks to end on the workers (dask cannot
        stop them, and a cancelled future is done at once), then leave nothing
        behind."""
        channel, client, token = self._channel, self._client, self._channel.end.token
        # A broadcast of the cancel flag, made after forget(), would leave it
        # on the workers.
        channel.flush()
        with self._lock:
            self._stopped = True
            futures = list(self._futures.values())
        if not all(f.done() for f in futures):
            with contextlib.suppress(Exception):
                channel.on_workers(dask_worker.kill, token)
            with contextlib.suppress(Exception):
                client.cancel(futures)
        self._thread.join(CLOSE_WAIT)
        deadline = time.monotonic() + CLOSE_WAIT
        with contextlib.suppress(Exception):
            while any(channel.on_workers(dask_worker.active, token).values()):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
        with contextlib.suppress(Exception):
            channel.on_workers(dask_worker.forget, token)
        for future in [*futures, self._function]:
            future.release()
        self._futures = {}

    def abort(self) -> None:
        self.cancel()


@contextlib.contextmanager
def connect(scheduler: str) -> Iterator[Client]:
    """A client of the cluster *scheduler* names: an address (``tcp://host:8786``),
    or ``local:N`` for a LocalCluster of N single-threaded worker processes that
    we start, and stop when the block ends."""
    if scheduler.startswith("local:"):
        workers = int(scheduler.removeprefix("local:"))
        with (
            LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
            ) as cluster,
            Client(cluster) as client,
        ):
            yield client
    else:
        with Client(scheduler) as client:
            yield client
