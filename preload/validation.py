"""Checks of the user's input, done before any process starts."""

from __future__ import annotations

import inspect
import math
import pickle
import re
from collections import Counter
from collections.abc import Collection, Iterable
from multiprocessing.context import BaseContext
from typing import Any

import cloudpickle

from .display import MODES
from .errors import describe
from .worker import JobFunction


def check_data_ids(data_ids: Any) -> tuple[str, ...]:
    """The data ids as a tuple; TypeError or ValueError if they are not unique
    strs. Any iterable will do (a tuple, a set, dict keys, a generator)."""
    if isinstance(data_ids, (str, bytes)) or not isinstance(data_ids, Iterable):
        raise TypeError(
            f"data_ids must be an iterable of str, got {type(data_ids).__name__}"
        )
    data_ids = tuple(data_ids)
    wrong = [d for d in data_ids if not isinstance(d, str) or not d]
    if wrong:
        raise TypeError(f"data_ids must be non-empty strs, got {wrong[0]!r}")
    duplicates = sorted(d for d, n in Counter(data_ids).items() if n > 1)
    if duplicates:
        raise ValueError(f"duplicate data ids: {', '.join(duplicates)}")
    return data_ids


def check_seconds(name: str, value: Any) -> None:
    """TypeError or ValueError unless *value* is None or a finite number >= 0
    (None is the way to say "no limit")."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds or None, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"{name} must be a finite number >= 0 (or None for no limit), got {value!r}"
        )


_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?)b?\s*", re.IGNORECASE)


def check_memory(max_memory: Any) -> int | None:
    """*max_memory* in bytes: an int, or a str such as "2GiB", "500MB", "1.5G"
    (K, M, G, T: powers of 1000; Ki, Mi, Gi, Ti: of 1024; a trailing B is
    optional, case does not matter)."""
    if max_memory is None:
        return None
    if isinstance(max_memory, bool) or not isinstance(max_memory, (int, str)):
        raise TypeError(
            f"max_memory must be a number of bytes or a str, got {max_memory!r}"
        )
    if isinstance(max_memory, int):
        size = max_memory
    else:
        match = _SIZE.fullmatch(max_memory)
        if match is None:
            raise ValueError(
                "max_memory must be a number of bytes or a size such as '2GiB',"
                f" '500MB' or '1.5G', got {max_memory!r}"
            )
        number, unit, binary = match.groups()
        power = "kmgt".find(unit.lower()) + 1 if unit else 0
        size = int(float(number) * (1024 if binary else 1000) ** power)
    if size <= 0:
        raise ValueError(f"max_memory must be > 0 bytes, got {max_memory!r}")
    return size


def check_max_workers(max_workers: Any) -> None:
    if max_workers is None:
        return
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise TypeError(f"max_workers must be an int, got {max_workers!r}")
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")


def check_display(display: Any) -> None:
    if display is not None and display not in MODES:
        raise ValueError(f"display must be one of {', '.join(MODES)}, got {display!r}")


def check_mp_context(mp_context: Any) -> None:
    if mp_context is not None and not isinstance(mp_context, (str, BaseContext)):
        raise TypeError(
            "mp_context must be a multiprocessing context or a start method name,"
            f" got {mp_context!r}"
        )


def check_params(job_function: JobFunction, reserved: Collection[str] = ()) -> None:
    """TypeError if the function cannot be called with a handle, a data id and
    the given parameters (a missing or unknown parameter), or if it declares a
    parameter named like one of *reserved* (the handle's own options, which
    would never reach it); then the function's own ``check_params(**params)``,
    if it has one, may raise about their values."""
    function, params, bound = job_function[:3]
    name = getattr(function, "__qualname__", None) or repr(function)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        signature = None  # no signature to check (some builtins, C extensions)
    if signature is not None:
        args = ("data_id",) if bound else (None, "data_id")
        try:
            signature.bind(*args, **params)
        except TypeError as exc:
            raise TypeError(f"{name}(): {exc}") from None
        positional = signature.bind_partial(*args).arguments
        clashes = [
            p for p in signature.parameters if p in reserved and p not in positional
        ]
        if clashes:
            raise TypeError(
                f"{name}() has a parameter {clashes[0]!r}, which is an option of"
                " the preload handle and would never reach it: rename it"
            )
    check_values = getattr(function, "check_params", None)
    if callable(check_values):
        check_values(**params)


def pickle_job_function(job_function: JobFunction) -> bytes:
    """*job_function* pickled for a worker process, once unpickled here to be
    sure a worker can; TypeError naming what fails."""
    try:
        payload = cloudpickle.dumps(job_function)
        pickle.loads(payload)
        return payload
    except Exception as exc:
        cause = exc
    parts = [
        (f"preload_data {job_function.function!r}", job_function.function),
        *((f"preload parameter {k!r}", v) for k, v in job_function.params.items()),
    ]
    for what, value in parts:
        try:
            pickle.loads(cloudpickle.dumps(value))
        except Exception as exc:
            raise TypeError(
                f"{what} cannot be sent to a worker process: {describe(exc)}"
            ) from exc
    raise TypeError(
        f"the preload job cannot be sent to a worker process: {describe(cause)}"
    ) from cause
