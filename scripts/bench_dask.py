"""Benchmarks of the dask runner on a LocalCluster of 2 single-threaded workers.

* per-job overhead: tiny jobs through the handle vs raw ``client.submit`` of
  the same function;
* 8 CPU-bound jobs: on the cluster vs the local engine (our own pool of 2);
* progress messages delivered per second (status messages, not coalesced);
* cancel latency: from ``cancel()`` to a running job seeing ``cancelled``,
  and to every job final.

Cases are interleaved, medians of --rounds. Run from outside the source tree:
    PYTHONPATH=/path/to/tree python /path/to/tree/scripts/bench_dask.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from distributed import Client, LocalCluster

from preload import ExecutorPreloadHandle, PreloadState, PreloadStatus


def tiny(handle, data_id):
    """A job that returns at once."""


def raw_tiny(data_id):
    return data_id


def spin(handle, data_id, seconds=0.5):
    """CPU-bound for *seconds* of this process's CPU time."""
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        for i in range(10_000):
            x += i * i
    handle.notify(PreloadState(data_id, progress=1.0))


def chatty(handle, data_id, n):
    for i in range(n):
        handle.notify(PreloadState(data_id, message=f"m{i}"))


def hot_path(handle, data_id, n=200_000):
    """Times progress notify() and handle.cancelled in the job; reports ns each."""
    began = time.perf_counter()
    for i in range(n):
        handle.notify(PreloadState(data_id, progress=i / n))
    notify = (time.perf_counter() - began) / n
    began = time.perf_counter()
    for _ in range(n):
        handle.cancelled  # noqa: B018 - the read is what is timed
    cancelled = (time.perf_counter() - began) / n
    handle.notify(
        PreloadState(data_id, message=f"{notify * 1e9:.0f} {cancelled * 1e9:.0f}")
    )


def in_job(client):
    [state] = run(["h"], hot_path, client).states
    return tuple(map(float, state.message.split()))


def waits_for_cancel(handle, data_id, path):
    Path(path, f"started-{data_id}").touch()
    while not handle.cancelled:
        time.sleep(0.0005)
    Path(path, f"seen-{data_id}").write_text(repr(time.time()))


def run(ids, function, executor=None, **params):
    return ExecutorPreloadHandle(ids, function, executor, silent=True, **params)


def per_job(client, n):
    """Wall seconds of *n* tiny jobs: raw client.map, then the handle."""
    ids = [f"t{i}" for i in range(n)]
    began = time.perf_counter()
    client.gather(client.map(raw_tiny, ids, pure=False))
    raw = time.perf_counter() - began
    began = time.perf_counter()
    handle = run(ids, tiny, client)
    ours = time.perf_counter() - began
    assert all(s.status is PreloadStatus.completed for s in handle.states)
    return raw, ours


def cpu_bound(client, n, seconds):
    ids = [f"c{i}" for i in range(n)]
    began = time.perf_counter()
    run(ids, spin, client, seconds=seconds)
    dask = time.perf_counter() - began
    began = time.perf_counter()
    run(ids, spin, max_workers=2, seconds=seconds)
    local = time.perf_counter() - began
    return dask, local


def messages(client, n):
    began = time.perf_counter()
    handle = run(["a", "b"], chatty, client, n=n)
    elapsed = time.perf_counter() - began
    assert [s.message for s in handle.states] == [f"m{n - 1}"] * 2
    return 2 * n / elapsed


def cancel_latency(client):
    with tempfile.TemporaryDirectory() as path:
        handle = run(["a", "b"], waits_for_cancel, client, path=path, blocking=False)
        deadline = time.monotonic() + 30
        while len(list(Path(path).glob("started-*"))) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.002)
        time.sleep(0.2)  # both jobs in their loop
        began = time.time()
        handle.cancel()
        call = time.time() - began
        handle.wait(10)
        final = time.time() - began
        seen = max(float(p.read_text()) for p in Path(path).glob("seen-*")) - began
    return call, seen, final


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tiny", type=int, default=16, help="tiny jobs a round")
    parser.add_argument("--messages", type=int, default=5000, help="per job")
    args = parser.parse_args()
    print(f"load before: {os.getloadavg()}")
    results: dict[str, list] = {}
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        run(["warm-up"], tiny, client)
        for _ in range(args.rounds):
            results.setdefault("few", []).append(per_job(client, args.tiny))
            results.setdefault("many", []).append(per_job(client, 4 * args.tiny))
            results.setdefault("cpu", []).append(cpu_bound(client, 8, 0.5))
            results.setdefault("messages", []).append(messages(client, args.messages))
            results.setdefault("cancel", []).append(cancel_latency(client))
            results.setdefault("in_job", []).append(in_job(client))
    print(f"load after: {os.getloadavg()}")

    def median(key, i=None):
        values = results[key] if i is None else [r[i] for r in results[key]]
        return statistics.median(values)

    n = args.tiny
    few_raw, few = median("few", 0), median("few", 1)
    many_raw, many = median("many", 0), median("many", 1)
    print(
        f"{n} tiny jobs on 2 workers: raw client.map {few_raw * 1e3:.0f} ms,"
        f" handle {few * 1e3:.0f} ms; {4 * n}: raw {many_raw * 1e3:.0f} ms,"
        f" handle {many * 1e3:.0f} ms"
    )
    each = ((many - many_raw) - (few - few_raw)) / (3 * n)
    fixed = (few - few_raw) - n * each
    print(
        f"  the handle adds {each * 1e3:.1f} ms a job (wall, 2 workers: "
        f"{2 * each * 1e3:.1f} ms of a worker's time) and {fixed * 1e3:.0f} ms a run"
    )
    dask, local = median("cpu", 0), median("cpu", 1)
    print(
        f"8 CPU-bound jobs of 0.5 s: dask {dask:.2f} s, local engine {local:.2f} s,"
        f" ratio {dask / local:.2f}x"
    )
    print(f"messages delivered: {median('messages'):,.0f} msg/s")
    print(
        f"in a job on the cluster: progress notify() {median('in_job', 0):.0f} ns"
        f" (with a new PreloadState), cancelled {median('in_job', 1):.0f} ns"
    )
    call, seen, final = (median("cancel", i) * 1e3 for i in range(3))
    print(
        f"cancel: call {call:.1f} ms, running jobs see it after {seen:.1f} ms,"
        f" all final after {final:.1f} ms"
    )


if __name__ == "__main__":
    main()
