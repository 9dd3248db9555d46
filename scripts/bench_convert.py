"""Convert generated NetCDF files to Zarr on processes, on threads and one after
another, side by side in one run, and print the ratios.

    python scripts/bench_convert.py [--files 8] [--megabytes 20] [--rounds 3]

Also prints what a byte costs in each phase (copy, unpack, convert), timed from
the phase messages of one-after-another runs of a .nc and a .nc.gz file: the
weights preload.convert gives its phases come from these.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from preload import ExecutorPreloadHandle, NullPreloadHandle, PreloadStatus
from preload.convert import preload_data
from preload.convert.samples import write_sample
from preload.engine import usable_cpus


def run_processes(ids: list[str], cache: Path, workers: int) -> None:
    handle = ExecutorPreloadHandle(
        ids, preload_data, silent=True, max_workers=workers, cache_dir=cache
    )
    check(handle)


def run_threads(ids: list[str], cache: Path, workers: int) -> None:
    with ThreadPoolExecutor(workers) as executor:
        handle = ExecutorPreloadHandle(
            ids, preload_data, executor, silent=True, cache_dir=cache
        )
    check(handle)


def run_serial(ids: list[str], cache: Path, workers: int) -> None:
    for data_id in ids:
        preload_data(NullPreloadHandle(), data_id, cache_dir=cache)


def check(handle: ExecutorPreloadHandle) -> None:
    failed = [s for s in handle.states if s.status is not PreloadStatus.completed]
    assert not failed, failed


class PhaseClock(NullPreloadHandle):
    """Times each phase from the phase messages a job posts."""

    def __init__(self):
        self.marks: list[tuple[str, float]] = []

    def notify(self, state):
        if state.message:
            self.marks.append((state.message.split()[0], time.perf_counter()))

    def seconds(self) -> dict[str, float]:
        spans: dict[str, float] = {}
        for (phase, start), (_, end) in itertools.pairwise(self.marks):
            spans[phase] = spans.get(phase, 0.0) + end - start
        return spans


def phase_costs(nc: Path, folder: Path) -> dict[str, float]:
    """Seconds per GB in each phase: copy and convert of *nc*, copy and unpack
    of it gzipped. A GB is of what the phase weight counts: the file copied,
    the NetCDF unpacked and converted."""
    gz = folder / f"{nc.stem}-phases.nc.gz"
    with nc.open("rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst)
    nc_size, gz_size = nc.stat().st_size, gz.stat().st_size
    runs = [
        (nc, {"copying": nc_size, "converting": nc_size}),
        (gz, {"copying": gz_size, "unpacking": nc_size, "converting": nc_size}),
    ]
    costs: dict[str, list[float]] = {}
    for path, sizes in runs:
        clock = PhaseClock()
        preload_data(clock, str(path), cache_dir=folder / "phases", force=True)
        for phase, seconds in clock.seconds().items():
            costs.setdefault(phase, []).append(seconds / sizes[phase] * 1e9)
    return {phase: min(values) for phase, values in costs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--megabytes", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    workers = usable_cpus()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = [
            write_sample(folder / f"sample-{i}.nc", args.megabytes, seed=i)
            for i in range(args.files)
        ]
        ids = [str(f) for f in files]
        total = sum(f.stat().st_size for f in files) / 1e6
        print(
            f"{args.files} files, {total:.0f} MB in all, {workers} workers,"
            f" median of {args.rounds} rounds"
        )
        modes = {
            "processes": run_processes,
            "threads": run_threads,
            "one after another": run_serial,
        }
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        for round_ in range(args.rounds):
            for mode, run in modes.items():
                cache = folder / f"cache-{round_}-{mode.replace(' ', '-')}"
                start = time.perf_counter()
                run(ids, cache, workers)
                times[mode].append(time.perf_counter() - start)
                shutil.rmtree(cache)
        median = {mode: statistics.median(t) for mode, t in times.items()}
        for mode, seconds in median.items():
            print(f"  {mode:<18} {seconds:6.2f} s  {total / seconds:6.1f} MB/s")
        serial = median["one after another"]
        print(f"processes / one after another: {median['processes'] / serial:.2f}")
        print(f"threads / one after another:   {median['threads'] / serial:.2f}")
        print(
            f"processes / threads:           "
            f"{median['processes'] / median['threads']:.2f}"
        )
        costs = phase_costs(files[0], folder)
        print("seconds per GB, by phase (relative to copying):")
        for phase, per_gb in costs.items():
            print(f"  {phase:<11} {per_gb:6.2f}  ({per_gb / costs['copying']:.1f})")


if __name__ == "__main__":
    main()
