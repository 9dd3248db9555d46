"""A big preload parameter: 200 jobs sharing one 50 MB parameter.

    python scripts/bench_big_param.py [--mb 50] [--jobs 200]

Prints the time of a run with the big parameter beside the same run with a
tiny one, on our own pool and on a caller's ProcessPoolExecutor (where the
function and its parameters travel with every job).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

from preload import ExecutorPreloadHandle


def noop(handle, data_id, payload):
    pass


def timed(ids, payload, executor=None) -> float:
    start = time.perf_counter()
    ExecutorPreloadHandle(ids, noop, executor, silent=True, payload=payload)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()
    ids = [f"id-{i}" for i in range(args.jobs)]
    big = b"x" * (args.mb * 1_000_000)
    timed(ids[:2], b"")  # warm up: the forkserver
    print(f"{args.jobs} jobs, one {args.mb} MB parameter; seconds:")
    print(f"  own pool:        {timed(ids, big):6.2f}  (tiny: {timed(ids, b''):.2f})")
    with ProcessPoolExecutor(2) as executor:
        timed(ids[:2], b"", executor)
        small = timed(ids, b"", executor)
        caller = timed(ids, big, executor)
        print(f"  caller's pool:   {caller:6.2f}  (tiny: {small:.2f})")
        start = time.perf_counter()
        for future in [executor.submit(len, big) for _ in ids]:
            future.result()
        raw = time.perf_counter() - start
        print(f"  the bytes alone: {raw:6.2f}  (executor.submit(len, payload) per job)")


if __name__ == "__main__":
    main()
