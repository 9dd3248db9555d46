"""Engine benchmarks, each measured side by side with its baseline in one run.

    python scripts/bench.py [--quick]

Prints one line per measure: the numbers, the ratio and the goal.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import psutil

from preload import ExecutorPreloadHandle, PreloadState, PreloadStatus
from preload.engine import default_mp_context, prepare_forkserver


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i % 7
    return total


def cpu_job(handle, data_id, n, chunks=100):
    """CPU-bound work in chunks, with a progress notify per chunk."""
    for i in range(chunks):
        spin(n // chunks)
        handle.notify(PreloadState(data_id, progress=(i + 1) / chunks))


def raw_cpu_task(n, chunks=100):
    for _ in range(chunks):
        spin(n // chunks)


def noop_job(handle, data_id):
    pass


def noop_task(data_id):
    return data_id


def notify_cost_job(handle, data_id, calls):
    """Times notify() and cancelled in the worker; reports ns per call."""
    state = PreloadState(data_id, progress=0.5)
    t0 = time.perf_counter()
    for _ in range(calls):
        handle.notify(state)
    t1 = time.perf_counter()
    for i in range(calls):
        handle.notify(PreloadState(data_id, progress=i / calls))
    t2 = time.perf_counter()
    for _ in range(calls):
        handle.cancelled  # noqa: B018 - the read is what we time
    t3 = time.perf_counter()
    per = [(t1 - t0), (t2 - t1), (t3 - t2)]
    handle.notify(
        PreloadState(data_id, message=" ".join(f"{p / calls * 1e9:.0f}" for p in per))
    )


def wait_for_cancel_job(handle, data_id):
    """Records when it first sees `cancelled`."""
    handle.notify(PreloadState(data_id, message="running"))
    while not handle.cancelled:
        pass
    handle.notify(PreloadState(data_id, message=repr(time.time())))


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def best(fn, repeat: int) -> float:
    return min(timed(fn) for _ in range(repeat))


def best_pair(first, second, repeat: int) -> tuple[float, float]:
    """Best times of two measures taken in turns, so that both see the same
    machine (it is shared, and its speed drifts)."""
    a, b = [], []
    for _ in range(repeat):
        a.append(timed(first))
        b.append(timed(second))
    return min(a), min(b)


def run_engine(ids, function, **kwargs):
    handle = ExecutorPreloadHandle(ids, function, silent=True, **kwargs)
    bad = [s for s in handle.states if s.status is not PreloadStatus.completed]
    assert not bad, bad


def run_raw(ids, task, *args):
    context = default_mp_context()
    with ProcessPoolExecutor(min(len(ids), 2), mp_context=context) as pool:
        for future in [pool.submit(task, *args) for _ in ids]:
            future.result()


def bench_cpu(n: int, repeat: int) -> None:
    ids = [f"cpu-{i}" for i in range(4)]
    engine, raw = best_pair(
        lambda: run_engine(ids, cpu_job, n=n),
        lambda: run_raw(ids, raw_cpu_task, n),
        repeat,
    )
    serial = best(lambda: [raw_cpu_task(n) for _ in ids], 1)
    with ThreadPoolExecutor(4) as pool:
        threads = best(lambda: run_engine(ids, cpu_job, executor=pool, n=n), 1)
    print(
        f"cpu-bound, 4 jobs on 2 cores: engine {engine:.2f} s, raw pool {raw:.2f} s,"
        f" serial {serial:.2f} s, engine on threads {threads:.2f} s"
    )
    print(f"  engine / raw ProcessPoolExecutor = {engine / raw:.2f} (goal <= 1.10)")
    print(f"  engine / serial = {engine / serial:.2f} (goal <= 0.60)")
    print(f"  engine on threads / serial = {threads / serial:.2f} (the GIL)")


def bench_tiny(count: int, repeat: int) -> None:
    """Jobs that return at once: warm (in this interpreter, after a first
    run) and cold (a fresh interpreter each: its forkserver starts too)."""
    ids = [f"tiny-{i}" for i in range(count)]
    engine, raw = [], []
    for _ in range(repeat):
        engine.append(timed(lambda: run_engine(ids, noop_job)))
        raw.append(timed(lambda: run_raw(ids, noop_task, "x")))
    engine_cold, raw_cold = [], []
    for _ in range(repeat):
        engine_cold += in_fresh_interpreter("--tiny-cold", "engine", str(count))
        raw_cold += in_fresh_interpreter("--tiny-cold", "raw", str(count))
    for when, e, r in (("warm", engine, raw), ("cold", engine_cold, raw_cold)):
        e, r = statistics.median(e), statistics.median(r)
        print(
            f"{count} tiny jobs, {when}: engine {e:.3f} s, raw submit loop {r:.3f} s:"
            f" ratio {e / r:.2f} (goal <= 1.2; medians of {repeat})"
        )


def tiny_cold(which: str, count: int) -> float:
    ids = [f"tiny-{i}" for i in range(count)]
    if which == "engine":
        return timed(lambda: run_engine(ids, noop_job))
    return timed(lambda: run_raw(ids, noop_task, "x"))


def in_fresh_interpreter(*args: str) -> list[float]:
    """The numbers this script prints, run with *args* in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=True
    ).stdout
    return [float(x) for x in out.split()]


def many_ids(count: int) -> str:
    """In this (fresh) interpreter: seconds for *count* ids that return at
    once, and the parent's peak resident memory above what it held before."""
    ids = [f"id-{i}" for i in range(count)]
    before = psutil.Process().memory_info().rss
    seconds = timed(lambda: run_engine(ids, noop_job))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    return f"{seconds} {peak - before}"


def bench_many_ids(count: int) -> None:
    seconds, grown = in_fresh_interpreter("--many", str(count))
    print(
        f"{count:,} ids that return at once: {seconds:.2f} s (goal <= 3 s), the"
        f" parent's peak memory +{grown / 1e6:.0f} MB (goal < 200 MB)"
    )


def bench_second_handle(repeat: int) -> None:
    """In this interpreter, after a first run: constructor to first job started."""
    ExecutorPreloadHandle(["a"], first_start_job, silent=True)
    times = []
    for _ in range(repeat):
        t0 = time.time()
        handle = ExecutorPreloadHandle(["a"], first_start_job, silent=True)
        times.append(float(handle.get_state("a").message) - t0)
    print(
        f"a later handle, constructor to first job started: median"
        f" {statistics.median(times) * 1e3:.1f} ms of {repeat},"
        f" max {max(times) * 1e3:.1f} ms (goal <= 30 ms)"
    )


def bench_notify(calls: int) -> None:
    handle = ExecutorPreloadHandle(["n"], notify_cost_job, silent=True, calls=calls)
    prebuilt, built, cancelled = handle.get_state("n").message.split()
    print(
        f"in a worker: progress notify() {prebuilt} ns (goal <= 1000),"
        f" with a new PreloadState {built} ns; cancelled {cancelled} ns (goal <= 2000)"
    )


def bench_cancel_latency(repeat: int) -> None:
    delays = []
    for _ in range(repeat):
        handle = ExecutorPreloadHandle(
            ["c"], wait_for_cancel_job, silent=True, blocking=False
        )
        while handle.get_state("c").message != "running":
            time.sleep(0.001)
        t0 = time.time()
        handle.cancel()
        handle.wait()
        delays.append(float(handle.get_state("c").message) - t0)
        handle.close()
    print(
        f"cancel() to a worker seeing cancelled: median"
        f" {statistics.median(delays) * 1e3:.1f} ms, max {max(delays) * 1e3:.1f} ms"
        " (goal <= 10 ms)"
    )


def until_cancelled_job(handle, data_id):
    """Cooperative: runs until it sees `cancelled`."""
    handle.notify(PreloadState(data_id, message="running"))
    while not handle.cancelled:
        time.sleep(0.001)


def bench_cancel_queued(repeat: int) -> None:
    """4 cooperative jobs on 2 workers: cancel() with 2 running and 2 queued,
    and right after the constructor."""
    for when in ("2 running, 2 queued", "right after construction"):
        calls, finals = [], []
        for _ in range(repeat):
            handle = ExecutorPreloadHandle(
                [f"q{i}" for i in range(4)],
                until_cancelled_job,
                silent=True,
                blocking=False,
                max_workers=2,
            )
            if when.startswith("2"):
                running = sum(s.message == "running" for s in handle.states)
                while running < 2:
                    time.sleep(0.001)
                    running = sum(s.message == "running" for s in handle.states)
            t0 = time.perf_counter()
            handle.cancel()
            calls.append(time.perf_counter() - t0)
            handle.wait()
            finals.append(time.perf_counter() - t0)
            handle.close()
        print(
            f"cancel() {when}: the call median {statistics.median(calls) * 1e3:.1f}"
            f" ms, max {max(calls) * 1e3:.1f} ms (goal <= 5 ms); to every job final"
            f" median {statistics.median(finals) * 1e3:.1f} ms,"
            f" max {max(finals) * 1e3:.1f} ms"
        )


def first_start_job(handle, data_id):
    handle.notify(PreloadState(data_id, message=repr(time.time())))


def raw_first_start(_):
    return time.time()


def cold_start(which: str) -> float:
    """In this (fresh) interpreter: seconds from the handle's constructor (or
    a raw forkserver pool's) to the first job started."""
    t0 = time.time()
    if which == "engine":
        handle = ExecutorPreloadHandle(["a"], first_start_job, silent=True)
        return float(handle.get_state("a").message) - t0
    context = multiprocessing.get_context("forkserver")  # nothing preloaded
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(raw_first_start, 0).result() - t0


def bench_cold_start(repeat: int) -> None:
    """Each in a fresh interpreter, in turns; the raw pool's workers import
    this script's top level, the engine's side with it, as ours do."""
    times: dict[str, list[float]] = {"engine": [], "raw": []}
    for _ in range(repeat):
        for which, found in times.items():
            found += in_fresh_interpreter("--cold-start", which)
    engine, raw = (statistics.median(found) for found in times.values())
    print(
        f"cold start, constructor to first job started: median {engine * 1e3:.0f}"
        f" ms (goal <= 130 ms); a raw forkserver pool {raw * 1e3:.0f} ms:"
        f" ratio {engine / raw:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller, fewer runs")
    parser.add_argument("--cold-start", help=argparse.SUPPRESS)
    parser.add_argument("--tiny-cold", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--many", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.many:
        print(many_ids(args.many))
        return
    if args.cold_start:
        print(cold_start(args.cold_start))
        return
    # The raw pools share the forkserver, with what it imports for the engine.
    prepare_forkserver(default_mp_context())
    if args.tiny_cold:
        print(tiny_cold(args.tiny_cold[0], int(args.tiny_cold[1])))
        return
    repeat = 1 if args.quick else 5
    print(f"Python {sys.version.split()[0]}, start method {default_mp_context()._name}")
    bench_cpu(3_000_000 if args.quick else 15_000_000, repeat)
    bench_tiny(2000, repeat)
    bench_many_ids(10_000 if args.quick else 100_000)
    bench_notify(200_000)
    bench_cancel_latency(5 if args.quick else 20)
    bench_cancel_queued(5 if args.quick else 20)
    bench_cold_start(3 if args.quick else 7)
    bench_second_handle(20)


if __name__ == "__main__":
    main()
