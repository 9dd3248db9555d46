"""Retries of transient faults: which exceptions, how often, how long between.

A job is retried inside ``worker.run_job``, whatever runs it (our pool, a
caller's executor, threads): the same handle and outbox serve every attempt,
so the parent sees one job whose messages arrive in order. The wait between
attempts is spent in the job's worker, looking at the cancel flag every
``POLL`` seconds: a cancel, a ``close()`` or the job's timeout ends it at
once. ``job_timeout`` bounds the whole job, its attempts and waits included.

Our own pool also reruns, when ``retry_on`` names them, a job whose worker
died (``WorkerDiedError``) or that it stopped past ``job_timeout``
(``TimeoutError``): the next attempt starts on a worker with the wait. Only
the class itself, named in ``retry_on``, counts for those two: the default
``(OSError,)`` retries a ``TimeoutError`` the job raises (a socket timeout),
never a job stopped for its ``job_timeout``.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from typing import Any, NamedTuple

POLL = 0.01
"""Seconds between two looks at the cancel flag while a job waits to retry."""

JITTER = 0.25
"""Each wait is its doubling delay times a random factor in 1 +- JITTER."""


class Retry(NamedTuple):
    """How a run retries its jobs: *retries* more attempts at most, after
    an exception of one of *retry_on*, waiting *delay* seconds, doubling."""

    retries: int
    retry_on: tuple[type[BaseException], ...]
    delay: float

    def wants(self, exc: BaseException, attempt: int) -> bool:
        """True if attempt number *attempt* (1 the first), which raised
        *exc*, is to be followed by another."""
        return attempt <= self.retries and isinstance(exc, self.retry_on)

    def names(self, cls: type[BaseException]) -> bool:
        """True if *retry_on* names *cls* itself (not a base class of it)."""
        return cls in self.retry_on

    def wait_before(self, retry: int) -> float:
        """Seconds to wait before retry number *retry* (1 the first)."""
        factor = 1 + random.uniform(-JITTER, JITTER)
        # Past 2**64 delays, a float would overflow; no wait is that long.
        return self.delay * 2.0 ** min(retry - 1, 64) * factor


def check_retry(retries: Any, retry_on: Any, retry_delay: Any) -> Retry | None:
    """The run's ``Retry``, None without retries; TypeError or ValueError
    about bad values, before any process starts."""
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise TypeError(f"retries must be an int, got {retries!r}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    classes = retry_on if isinstance(retry_on, tuple) else (retry_on,)
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            raise TypeError(
                "retry_on must be an exception class or a tuple of them"
                f" (subclasses of Exception), got {retry_on!r}"
            )
    if isinstance(retry_delay, bool) or not isinstance(retry_delay, (int, float)):
        raise TypeError(f"retry_delay must be a number of seconds, got {retry_delay!r}")
    if not (0 <= retry_delay < float("inf")):
        raise ValueError(
            f"retry_delay must be a finite number >= 0, got {retry_delay!r}"
        )
    return Retry(retries, classes, float(retry_delay)) if retries else None


def waiting_message(retry: int, retries: int, seconds: float, failure: str) -> str:
    """'retry 2 of 3 in 4.0 s: ConnectionError: refused' (*failure*: the
    last attempt's exception, as ``describe()`` gives it)."""
    return f"retry {retry} of {retries} in {seconds:.1f} s: {failure}"


def keep_earlier(exc: BaseException, earlier: list[str], attempts: int) -> None:
    """Add to *exc*, the last attempt's exception, the earlier attempts'
    exceptions (*earlier*: their ``describe()``) as ``__notes__``, after its
    own: "attempt 1 of 3 failed: OSError: ...". *attempts*: how many the run
    allows."""
    if earlier:
        earlier = [
            f"attempt {n} of {attempts} failed: {text}"
            for n, text in enumerate(earlier, 1)
        ]
        notes = list(getattr(exc, "__notes__", None) or ())
        # An exception that refuses new attributes stays as it is.
        with contextlib.suppress(Exception):
            exc.__notes__ = notes + earlier


def wait_unless(seconds: float, stop: Callable[[], bool]) -> bool:
    """Wait *seconds*; False as soon as *stop()* is True."""
    deadline = time.monotonic() + seconds
    while not stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(POLL, left))
    return False
