"""Jobs on a given executor: the caller's, or threads of our own.

The executor's done callbacks pass each job's outcome to the collector. A
job's channel end goes with the job (pickled for another process): we cannot
hand it to the executor's workers once, as we do for our own pools.
"""

from __future__ import annotations

import functools
from concurrent.futures import Executor, Future

from ..channel import Channel
from ..collector import Collector
from ..worker import Job, outcome_of, run_job


class ExecutorRunner:
    """Runs jobs on a given executor: the caller's, which is used and never
    shut down, or threads of our own (*owned*), shut down at close."""

    def __init__(
        self,
        executor: Executor,
        jobs: list[Job],
        channel: Channel,
        collector: Collector,
        owned: bool = False,
    ):
        self._collector = collector
        self._executor = executor
        self._owned = owned
        # Ends of a ThreadChannel stay in this process; others are pickled with
        # every job, since we cannot hand them to the executor's workers once.
        self._futures = []
        for job in jobs:
            future = executor.submit(run_job, job, channel.end)
            future.add_done_callback(functools.partial(self._on_done, job.data_id))
            self._futures.append(future)

    def _on_done(self, data_id: str, future: Future) -> None:
        self._collector.post_outcome(data_id, outcome_of(future))

    def cancel(self) -> None:
        for future in self._futures:
            future.cancel()

    def close(self, grace: float | None) -> None:
        """Shut our own threads down (a caller's executor is left as it is);
        a thread cannot be stopped, so *grace* does not matter here."""
        if self._owned:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def abort(self) -> None:
        self.cancel()
