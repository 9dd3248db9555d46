"""Soak run: preloads with random faults, for a given time.

    python scripts/soak.py --seconds 300

Each round starts a handle on 4-10 jobs; each job is, at random, fine, raises,
crashes its worker (os._exit, SIGKILL, a segfault), or hangs past the timeout
(with a child process of its own); some rounds are cancelled part way. Every
fourth round runs 100-600 quick jobs instead (they go to the workers in
batches), a few of them faulty. At the
end it prints what ran, what was injected, the final states, the jobs lost
(not final, or final with the wrong outcome) and what was leaked (processes,
threads, file descriptors beyond the start), and exits 1 if anything was lost
or leaked.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter

import psutil

from preload import ExecutorPreloadHandle, PreloadState, PreloadStatus
from preload.errors import WorkerDiedError

TIMEOUT = 1.0
GRACE = 0.3
ROLES = ("fine", "fine", "fine", "raise", "exit", "sigkill", "segfault", "hang")


def job(handle, data_id, roles, quick=False):
    role = roles[data_id]
    for i in range(0 if quick else 10):
        if handle.cancelled:
            return
        time.sleep(random.uniform(0.005, 0.03))
        handle.notify(PreloadState(data_id, progress=(i + 1) / 10))
    if role == "raise":
        raise ValueError(f"injected into {data_id}")
    if role == "exit":
        os._exit(7)
    if role == "sigkill":
        os.kill(os.getpid(), 9)
    if role == "segfault":
        ctypes.string_at(0)
    if role == "hang":
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        time.sleep(60)


def expected(role: str, state: PreloadState, cancelled: bool) -> bool:
    """Did the job end as its role says it must?"""
    if cancelled and state.status is PreloadStatus.cancelled:
        return True
    if role == "fine":
        return state.status is PreloadStatus.completed
    if role == "raise":
        return state.status is PreloadStatus.failed and isinstance(
            state.exception, ValueError
        )
    if role in ("exit", "sigkill", "segfault"):
        return state.status is PreloadStatus.failed and isinstance(
            state.exception, WorkerDiedError
        )
    return state.status is PreloadStatus.failed and isinstance(
        state.exception, TimeoutError
    )


def snapshot() -> tuple[int, int, int]:
    me = psutil.Process()
    helpers = ("resource_tracker", "forkserver")
    children = 0
    for proc in me.children(recursive=True):
        try:
            if proc.ppid() == me.pid and any(
                h in " ".join(proc.cmdline()) for h in helpers
            ):
                continue
        except psutil.Error:
            continue
        children += 1
    return children, threading.active_count(), me.num_fds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    injected: Counter[str] = Counter()
    finals: Counter[str] = Counter()
    rounds = jobs = lost = 0
    start = time.monotonic()
    baseline = None
    while time.monotonic() - start < args.seconds:
        quick = rounds % 4 == 3
        if quick:
            ids = [f"r{rounds}-j{i}" for i in range(rng.randint(100, 600))]
            roles = {
                data_id: rng.choice(ROLES) if rng.random() < 0.01 else "fine"
                for data_id in ids
            }
        else:
            ids = [f"r{rounds}-j{i}" for i in range(rng.randint(4, 10))]
            roles = {data_id: rng.choice(ROLES) for data_id in ids}
        cancel_after = rng.choice([None, None, None, rng.uniform(0.05, 1.5)])
        handle = ExecutorPreloadHandle(
            ids,
            job,
            blocking=False,
            silent=True,
            job_timeout=TIMEOUT,
            cancel_grace=GRACE,
            roles=roles,
            quick=quick,
        )
        if cancel_after is not None and not handle.wait(cancel_after):
            handle.cancel()
            injected["cancel"] += 1
        if not handle.wait(60):
            print(f"round {rounds}: not done after 60 s", file=sys.stderr)
        handle.close()
        for state in handle.states:
            role = roles[state.data_id]
            finals[str(state.status)] += 1
            if role != "fine":
                injected[role] += 1
            if not (
                state.status.is_final
                and expected(role, state, cancel_after is not None)
            ):
                lost += 1
                print(f"lost: {role} {state!r}", file=sys.stderr)
        rounds += 1
        jobs += len(ids)
        if baseline is None:
            baseline = snapshot()
    children, threads, fds = snapshot()
    leaked = max(0, children - baseline[0]) + max(0, threads - baseline[1])
    leaked += max(0, fds - baseline[2] - 10)
    print(f"ran {time.monotonic() - start:.0f} s: {rounds} rounds, {jobs} jobs")
    print(
        "faults injected:", ", ".join(f"{k} {v}" for k, v in sorted(injected.items()))
    )
    print("final states:", ", ".join(f"{k} {v}" for k, v in sorted(finals.items())))
    print(f"lost = {lost}")
    print(
        f"leaked = {leaked} (processes {children - baseline[0]:+d},"
        f" threads {threads - baseline[1]:+d}, fds {fds - baseline[2]:+d})"
    )
    return 1 if lost or leaked else 0


if __name__ == "__main__":
    sys.exit(main())
