"""What a run enforces on each of its jobs, wherever they run."""

from __future__ import annotations

from typing import NamedTuple

from .retry import Retry


class Limits(NamedTuple):
    """Seconds and bytes; None: no limit."""

    timeout: float | None = None
    """Seconds a job may run; past it, it sees ``cancelled``."""
    grace: float | None = None
    """Seconds a job gets to stop (after a cancel, a close or its timeout)
    before its process is terminated; None waits for it."""
    max_memory: int | None = None
    """Resident bytes a job's processes may hold; past it, they are terminated."""
    retry: Retry | None = None
    """How a job that failed runs again (None: never)."""
