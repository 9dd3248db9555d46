"""The ``preload`` command: ``preload demo`` and ``preload run``."""

from __future__ import annotations

import argparse
import importlib
import json
import multiprocessing
import os
import re
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import __version__, demo
from .errors import describe
from .executor_handle import ExecutorPreloadHandle
from .state import PreloadStatus


class UsageError(Exception):
    """A bad command line: one line on stderr, exit status 2."""


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None


def _positive(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _seconds(text: str) -> float:
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _whole(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text}")
    return value


def _count(text: str) -> int:
    return _whole(text, 1)


def _retries(text: str) -> int:
    return _whole(text, 0)


def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command's parser, and that of ``preload run``."""
    parser = argparse.ArgumentParser(
        prog="preload",
        description="Preload slow data resources concurrently, in worker"
        " processes, with live progress and real cancellation.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser(
        "demo",
        help="run the seed scenario: a blocking run, then a cancelled one",
        description="Run the seed scenario: pretend to preload a few data"
        " ids, first in a blocking run, then in a run cancelled part-way.",
    )
    run_demo.add_argument("--jobs", type=_count, default=4, help="number of data ids")
    run_demo.add_argument(
        "--duration",
        type=_positive,
        default=3.0,
        help="mean seconds per job (each takes 0.5-1.5 times that)",
    )
    run_demo.add_argument(
        "--cancel-after",
        type=_positive,
        default=2.0,
        help="seconds after which the second run is cancelled",
    )
    run_demo.add_argument(
        "--threads", action="store_true", help="run the jobs on threads"
    )

    run = commands.add_parser(
        "run",
        help="run a preload function over data ids, with the live display",
        description="Run FUNCTION(handle, data_id, **params) for each id. Exit"
        " status: 0 when every job completed, 1 when any failed or was"
        " cancelled, 130 after Ctrl-C, 2 for a bad command line. Options may"
        " come before, between or after the ids; ids after -- may start with -.",
    )
    run.add_argument("function", help="MODULE:FUNCTION, e.g. preload.demo:preload_data")
    run.add_argument("ids", nargs="*", help="the data ids")
    run.add_argument("--ids-from", type=Path, help="a file with one data id a line")
    run.add_argument("-j", "--jobs", type=_count, help="workers (processes or threads)")
    run.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter for the function. VALUE is JSON where it starts like"
        ' JSON (a number, true, false, null, "text", [list], {object}),'
        " else a string",
    )
    run.add_argument("--timeout", type=_positive, help="seconds a job may run")
    run.add_argument(
        "--cancel-grace", type=_seconds, help="seconds a cancelled job gets to stop"
    )
    run.add_argument(
        "--retries",
        type=_retries,
        default=0,
        help="run a job that raised an OSError (a connection refused, a"
        " timeout) again, at most this many more times",
    )
    run.add_argument(
        "--retry-delay",
        type=_seconds,
        default=1.0,
        help="seconds before the first retry, doubling for each next one",
    )
    run.add_argument("--threads", action="store_true", help="run the jobs on threads")
    run.add_argument(
        "--start-method",
        choices=multiprocessing.get_all_start_methods(),
        help="how worker processes start (default: forkserver, or spawn)",
    )
    run.add_argument("--json", type=Path, help="write the final states as JSON lines")
    return parser, run


def run_demo(jobs: int, duration: float, cancel_after: float, threads: bool) -> None:
    data_ids = demo.demo_ids(jobs)
    executor = ThreadPoolExecutor(jobs) if threads else None
    try:
        print(f"Blocking run: {jobs} jobs of ~{duration:g} s each")
        # The display shows the run, and its final table.
        ExecutorPreloadHandle(data_ids, demo.preload_data, executor, duration=duration)
        print(f"\nNon-blocking run, cancelled after {cancel_after:g} s")
        with ExecutorPreloadHandle(
            data_ids, demo.preload_data, executor, blocking=False, duration=duration
        ) as handle:
            if not handle.wait(cancel_after):
                handle.cancel()
                handle.wait()
            print(demo.final_table(handle))
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)


def load_function(spec: str) -> Callable[..., Any]:
    """The function that MODULE:FUNCTION names; modules in the current
    folder are found, as with ``python -m``."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise UsageError(f"expected MODULE:FUNCTION, got {spec!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import module {module_name!r}: {exc}") from exc
    function = module
    for part in name.split("."):
        function = getattr(function, part, None)
        if function is None:
            raise UsageError(f"module {module_name!r} has no {name!r}")
    if not callable(function):
        raise UsageError(f"{spec} is not callable")
    return function


# How a JSON value other than a bare string starts.
_LOOKS_LIKE_JSON = re.compile(r'\s*([-{\["0-9]|(true|false|null)\b)')


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """KEY=VALUE pairs; a VALUE that starts like JSON must be JSON."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--param expects KEY=VALUE, got {pair!r}")
        if not _LOOKS_LIKE_JSON.match(text):
            params[key] = text
            continue
        try:
            params[key] = json.loads(text)
        except ValueError as exc:
            raise UsageError(
                f"--param {key}: {text!r} starts like JSON but is not ({exc});"
                f" quote a string as JSON: {key}='\"...\"'"
            ) from None
    return params


def read_ids(ids: list[str], ids_from: Path | None) -> list[str]:
    ids = list(ids)
    if ids_from is not None:
        try:
            lines = ids_from.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UsageError(f"cannot read ids from {ids_from}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"cannot read ids from {ids_from}: not UTF-8 text"
                f" (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
            ) from None
        ids += [line.strip() for line in lines if line.strip()]
    if not ids:
        raise UsageError("no data ids: give them as arguments or with --ids-from")
    return ids


def run_function(args: argparse.Namespace) -> int:
    function = load_function(args.function)
    params = parse_params(args.param)
    ids = read_ids(args.ids, args.ids_from)
    options: dict[str, Any] = {
        "job_timeout": args.timeout,
        "mp_context": args.start_method,
        "retries": args.retries,
        "retry_delay": args.retry_delay,
    }
    if args.cancel_grace is not None:
        options["cancel_grace"] = args.cancel_grace
    executor = ThreadPoolExecutor(args.jobs) if args.threads else None
    if executor is None:
        options["max_workers"] = args.jobs
    try:
        try:
            handle = ExecutorPreloadHandle(ids, function, executor, **options, **params)
        except (TypeError, ValueError) as exc:
            # Bad input, found before any process started.
            raise UsageError(str(exc)) from exc
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    if args.json is not None:
        write_json(args.json, handle.states)
    completed = all(s.status is PreloadStatus.completed for s in handle.states)
    return 0 if completed else 1


def write_json(path: Path, states) -> None:
    with path.open("w") as file:
        for state in states:
            error = state.exception
            record = {
                "data_id": state.data_id,
                "status": state.status.value,
                "progress": state.progress,
                "message": state.message,
                "exception": describe(error) if error else None,
            }
            file.write(json.dumps(record) + "\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; the options of ``preload run`` may come between its
    arguments."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, run = _parsers()
    if argv[:1] == ["run"]:
        return run.parse_intermixed_args(argv[1:], argparse.Namespace(command="run"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.command == "demo":
            run_demo(args.jobs, args.duration, args.cancel_after, args.threads)
            return 0
        return run_function(args)
    except UsageError as exc:
        print(f"preload: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
