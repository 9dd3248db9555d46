"""preload beside its peers, in one run: the same workloads on each library.

    pip install -e ".[bench]"
    python scripts/bench_peers.py [--trials 5] [--quiet-load 1.5]

Workloads, 2 workers everywhere:

* tiny: 2,000 jobs that return at once; wall time from the pool's creation to
  the last result;
* cold: a fresh interpreter (libraries imported) from the pool's creation to
  the first job started; then, in that interpreter, the peak resident memory
  of it and its children while a new pool runs the 2,000 jobs;
* cpu: 8 CPU-bound jobs of ~0.5 s; preload's jobs report progress 100 times;
* progress: 4 jobs of 100,000 progress updates each, where a library can
  carry them (preload: notify(); the others: a queue, or a shared array).

Trials are interleaved (every library once per trial, in a rotating order);
each figure is the median of the trials, with its ratio to the raw
``ProcessPoolExecutor`` on forkserver: the median of the trials' ratios.
Before each trial the script waits (at most --max-wait seconds) for the
1-minute load average to drop below --quiet-load; the load seen is printed
beside the numbers.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import psutil

WORKERS = 2
TINY = 2000
CPU_JOBS = 8
UPDATES = 100_000


# -- job functions (module level: every library can send them) -------------


def noop(x):
    return x


def spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i % 7
    return total


SPIN = 1  # calibrated in main() so that spin(SPIN) takes ~5 ms


def cpu_task(n):
    for _ in range(100):
        spin(n)


def first_started(_):
    return time.time()


_progress = None  # a queue or array given to each worker once


def set_progress(target):
    global _progress
    _progress = target


def progress_to_queue(job):
    for i in range(UPDATES):
        _progress.put((job, i))


def progress_to_array(job):
    for i in range(UPDATES):
        _progress[job] = i


def preload_noop(handle, data_id):
    pass


def preload_first(handle, data_id):
    from preload import PreloadState

    handle.notify(PreloadState(data_id, message=repr(time.time())))


def preload_cpu(handle, data_id, n):
    from preload import PreloadState

    for i in range(100):
        spin(n)
        handle.notify(PreloadState(data_id, progress=(i + 1) / 100))


def preload_progress(handle, data_id):
    from preload import PreloadState

    for i in range(UPDATES):
        handle.notify(PreloadState(data_id, progress=i / UPDATES))


# -- the libraries ----------------------------------------------------------


def ctx(name: str):
    return multiprocessing.get_context(name)


def raw_map(method: str, fn, args) -> list:
    with ProcessPoolExecutor(WORKERS, mp_context=ctx(method)) as pool:
        return [f.result() for f in [pool.submit(fn, a) for a in args]]


def run_preload(kind: str, args) -> list:
    from preload import ExecutorPreloadHandle

    ids = [f"j{i}" for i in range(len(args))]
    if kind == "noop":
        handle = ExecutorPreloadHandle(
            ids, preload_noop, silent=True, max_workers=WORKERS
        )
    elif kind == "first":
        handle = ExecutorPreloadHandle(
            ids, preload_first, silent=True, max_workers=WORKERS
        )
        return [float(handle.get_state(ids[0]).message)]
    elif kind == "cpu":
        handle = ExecutorPreloadHandle(
            ids, preload_cpu, silent=True, max_workers=WORKERS, n=SPIN
        )
    else:
        handle = ExecutorPreloadHandle(
            ids, preload_progress, silent=True, max_workers=WORKERS
        )
    return [s.status for s in handle.states]


def run_mp_pool(fn, args) -> list:
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        return pool.map(fn, args)


def run_pebble(fn, args) -> list:
    import pebble

    with pebble.ProcessPool(max_workers=WORKERS) as pool:
        return [f.result() for f in [pool.schedule(fn, (a,)) for a in args]]


def run_loky(fn, args) -> list:
    import loky

    with loky.ProcessPoolExecutor(max_workers=WORKERS) as pool:
        return [f.result() for f in [pool.submit(fn, a) for a in args]]


def run_joblib(fn, args) -> list:
    import joblib

    # As joblib is used: its loky workers stay up between calls.
    return joblib.Parallel(n_jobs=WORKERS)(joblib.delayed(fn)(a) for a in args)


def run_mpire(fn, args) -> list:
    import mpire

    with mpire.WorkerPool(n_jobs=WORKERS) as pool:
        return pool.map(fn, args)


PLAIN = {
    "raw forkserver": lambda fn, args: raw_map("forkserver", fn, args),
    "raw fork": lambda fn, args: raw_map("fork", fn, args),
    "mp.Pool": run_mp_pool,
    "pebble": run_pebble,
    "loky": run_loky,
    "joblib": run_joblib,
    "mpire": run_mpire,
}
PRELOAD_KIND = {noop: "noop", first_started: "first", cpu_task: "cpu"}


def run(library: str, fn, args) -> list:
    if library == "preload":
        return run_preload(PRELOAD_KIND[fn], args)
    return PLAIN[library](fn, args)


LIBRARIES = ["preload", *PLAIN]


# -- progress: only where a library can carry updates -----------------------


def progress_raw_queue() -> None:
    # The raw pool's way: a SimpleQueue (no feeder thread, so nothing is
    # left unsent when a pool stops its workers), given to each worker once.
    queue = ctx("forkserver").SimpleQueue()
    drained = drain(queue)
    with ProcessPoolExecutor(
        WORKERS,
        mp_context=ctx("forkserver"),
        initializer=set_progress,
        initargs=(queue,),
    ) as pool:
        list(pool.map(progress_to_queue, range(4)))
    queue.put(None)
    drained.join()


def progress_pebble_queue() -> None:
    import pebble

    queue = ctx("fork").SimpleQueue()
    drained = drain(queue)
    with pebble.ProcessPool(
        max_workers=WORKERS, initializer=set_progress, initargs=(queue,)
    ) as pool:
        [f.result() for f in [pool.schedule(progress_to_queue, (j,)) for j in range(4)]]
    queue.put(None)
    drained.join()


def progress_shared_array() -> None:
    array = ctx("fork").Array("q", 4, lock=False)
    with ProcessPoolExecutor(
        WORKERS, mp_context=ctx("fork"), initializer=set_progress, initargs=(array,)
    ) as pool:
        list(pool.map(progress_to_array, range(4)))


def drain(queue) -> threading.Thread:
    def loop():
        while queue.get() is not None:
            pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


PROGRESS: dict[str, Callable[[], object]] = {
    "raw forkserver + SimpleQueue": progress_raw_queue,
    "preload": lambda: run_preload("progress", range(4)),
    "pebble + SimpleQueue": progress_pebble_queue,
    "raw fork + shared array": progress_shared_array,
}


# -- measuring ----------------------------------------------------------------


class PeakMemory:
    """Peak resident memory of this process and its children, sampled every
    5 ms by a process of its own (a sampling thread here would make the
    fork-based pools fork a process with threads)."""

    def __init__(self):
        self._sampler = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--sample", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._sampler.stdout.readline()  # sampling

    def stop(self) -> int:
        out, _ = self._sampler.communicate("stop\n")
        return int(out)


def sample(pid: int) -> None:
    """In the sampler: sum the RSS of *pid* and its children (not ourselves,
    nor the forkserver shared by every run) until told to stop."""
    me = os.getpid()
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.readline(), stop.set())).start()
    root = psutil.Process(pid)
    peak = 0
    print("sampling", flush=True)
    while not stop.wait(0.005):
        total = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                # The forkserver's workers share its cmdline; it has ppid root.
                server = proc.ppid() == pid and "forkserver" in " ".join(proc.cmdline())
                if proc.pid != me and not server:
                    total += proc.memory_info().rss
            except psutil.Error:
                pass
        peak = max(peak, total)
    print(peak, flush=True)


def fresh(library: str) -> tuple[float, float]:
    """In a fresh interpreter: seconds from the pool's creation to the first
    job started; then the peak memory (MB) of that interpreter and its
    children while a new pool runs the tiny jobs."""
    out = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--fresh", library],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cold, peak = out.split()[-2:]
    return float(cold), int(peak) / 1e6


def fresh_here(library: str) -> None:
    # Imports are not what is timed: each library as its users import it.
    if library == "preload":
        from preload import ExecutorPreloadHandle  # noqa: F401
    elif library in ("pebble", "loky", "joblib", "mpire"):
        __import__(library)
    t0 = time.time()
    cold = run(library, first_started, [0])[0] - t0
    peak = PeakMemory()
    run(library, noop, range(TINY))
    print(cold, peak.stop())


def wait_for_quiet(limit: float, max_wait: float) -> float:
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] > limit and time.monotonic() < deadline:
        time.sleep(2)
    return os.getloadavg()[0]


def calibrate() -> int:
    n = 10_000
    t0 = time.perf_counter()
    spin(n)
    return max(1, int(n * 0.005 / (time.perf_counter() - t0)))


def table(title: str, results: dict[str, list[float]], unit: str, base: str) -> None:
    """Medians, and each library's ratio to *base*: the median of the ratios
    trial by trial (the two ran moments apart; the machine's speed drifts
    more than that between trials)."""
    print(f"\n{title}")
    for name, values in results.items():
        median = statistics.median(values)
        pairs = zip(values, results[base], strict=True)
        ratio = statistics.median(v / b for v, b in pairs)
        scale = 1e3 if unit == "ms" else 1
        print(
            f"  {name:32s} {median * scale:9.3f} {unit}"
            f"   {ratio:5.2f}x   (min {min(values) * scale:.3f})"
        )


def main() -> None:
    global SPIN
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--quiet-load", type=float, default=1.5)
    parser.add_argument("--max-wait", type=float, default=60.0)
    parser.add_argument("--only", nargs="*", help="tiny cold cpu progress")
    parser.add_argument("--fresh", help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sample:
        sample(args.sample)
        return
    if args.fresh:
        fresh_here(args.fresh)
        return
    from preload.engine import default_mp_context, prepare_forkserver

    prepare_forkserver(default_mp_context())  # as preload does
    SPIN = calibrate()
    only = set(args.only or ["tiny", "cold", "cpu", "progress"])
    tiny = {name: [] for name in LIBRARIES}
    memory = {name: [] for name in LIBRARIES}
    cold = {name: [] for name in LIBRARIES}
    cpu = {name: [] for name in LIBRARIES}
    progress = {name: [] for name in PROGRESS}
    loads = []
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {WORKERS} workers")
    for trial in range(args.trials):
        loads.append(wait_for_quiet(args.quiet_load, args.max_wait))
        order = (
            LIBRARIES[trial % len(LIBRARIES) :] + LIBRARIES[: trial % len(LIBRARIES)]
        )
        for name in order:
            if "tiny" in only:
                t0 = time.perf_counter()
                run(name, noop, range(TINY))
                tiny[name].append(time.perf_counter() - t0)
            if "cold" in only:
                seconds, peak = fresh(name)
                cold[name].append(seconds)
                memory[name].append(peak)
            if "cpu" in only:
                t0 = time.perf_counter()
                run(name, cpu_task, [SPIN] * CPU_JOBS)
                cpu[name].append(time.perf_counter() - t0)
        if "progress" in only:
            for name, fn in PROGRESS.items():
                t0 = time.perf_counter()
                fn()
                progress[name].append(time.perf_counter() - t0)
        print(f"trial {trial + 1}: load {loads[-1]:.2f}", flush=True)
    print(
        f"1-minute load average at the trials: {', '.join(f'{x:.2f}' for x in loads)}"
    )
    base = "raw forkserver"
    if "tiny" in only:
        table(f"{TINY} jobs that return at once (wall)", tiny, "s", base)
    if "cold" in only:
        table("fresh interpreter: pool created -> first job started", cold, "ms", base)
        print(f"\npeak RSS, fresh interpreter + children, during the {TINY} jobs")
        base_mb = statistics.median(memory[base])
        for name, values in memory.items():
            median = statistics.median(values)
            print(f"  {name:32s} {median:9.0f} MB   {median / base_mb:5.2f}x")
    if "cpu" in only:
        table(f"{CPU_JOBS} CPU-bound jobs of ~0.5 s", cpu, "s", base)
    if "progress" in only:
        table(
            f"4 jobs x {UPDATES:,} progress updates",
            progress,
            "s",
            "raw forkserver + SimpleQueue",
        )


if __name__ == "__main__":
    main()
