"""The ``preload`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from . import demo
from .executor_handle import ExecutorPreloadHandle


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="preload", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser(
        "demo",
        help="run the seed scenario: a blocking run, then a cancelled one",
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
    return parser


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
            print(handle)
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        run_demo(args.jobs, args.duration, args.cancel_after, args.threads)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
