"""Where jobs run, side by side: each runner takes a run's jobs and the
worker side of its channel, and hands every job's outcome to the collector.
The parent side (collector, states, displays) never knows which runner runs
the jobs.

* ``pool.py``: process pools of our own, supervised (crashes, timeouts,
  memory limits, forced cancel);
* ``executor.py``: a caller's executor, or threads of our own;
* ``dask.py``: a dask.distributed cluster (a caller's ``Client``), each job
  in a process of its own on a worker (``dask_worker.py`` supervises it,
  ``dask_child.py`` runs it). Imported only when a ``Client`` is given.
"""

from __future__ import annotations

from typing import Any


def is_dask_client(executor: Any) -> bool:
    """True if *executor* is a ``distributed.Client`` (or a subclass), found
    without importing distributed."""
    return any(
        cls.__name__ == "Client" and cls.__module__.startswith("distributed")
        for cls in type(executor).__mro__
    )
