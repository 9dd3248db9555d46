"""A helper process per dask worker that forks each job's own process.

A fresh interpreter per job costs 0.1-0.2 s (0.9 s more for a function that
imports xarray and zarr); a fork of a process that has imported the engine
and the job function's module costs milliseconds. The helper is
single-threaded, so forking it is safe. It is started by a run's first job
on a worker (``Zygote`` below, in the worker), and stopped when the last run
using it on that worker is released (or its worker ends), so that a closed
run leaves nothing running on the workers.

Protocol, over a Unix socket pair (SOCK_SEQPACKET: one message a send):
* worker to helper: ``("fork", request, sys.path, modules)`` with two file
  descriptors (the job's *control* and *frames* pipe ends, see
  ``dask_child.py``): the helper imports *modules* (once; failures are left
  to the job), forks, and the child runs the job in a session of its own;
* helper to worker: ``("forked", request, pid)``, and ``("exit", pid, code)``
  when a job process ends (code < 0: killed by that signal). Before it reaps
  a job process, the helper kills the job's process group: whatever the job
  left running ends with it.

End of file on the socket means the worker is gone: the helper kills every
job's process group and exits.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import traceback

MAX_MESSAGE = 1 << 16

STOP_WAIT = 2.0
"""Seconds ``Zygote.stop()`` waits for the helper to exit."""


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _reap(sock: socket.socket, children: set[int]) -> None:
    while children:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None:
            return
        # Not reaped yet: the group id cannot have been reused.
        _kill_group(info.si_pid)
        _, status = os.waitpid(info.si_pid, 0)
        children.discard(info.si_pid)
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError):
            sock.send(pickle.dumps(("exit", info.si_pid, code)))


def _fork(sock: socket.socket, wakeup: tuple[int, int], fds: list[int]) -> int:
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        return pid
    # The job's own process.
    try:
        sock.close()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in wakeup:
            os.close(fd)
        os.setsid()
        from .dask_child import main

        main(fds[0], fds[1])
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(70)


def serve(fd: int) -> None:
    """The helper's loop (the ``__main__`` of this module)."""
    from . import dask_child  # noqa: F401 - every job process needs it

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    wakeup = os.pipe()
    for end in wakeup:
        os.set_blocking(end, False)
    signal.set_wakeup_fd(wakeup[1])
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    imported: set[str] = set()
    while True:
        with contextlib.suppress(InterruptedError):
            ready, _, _ = select.select([sock, wakeup[0]], [], [])
        if wakeup[0] in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(wakeup[0], 512):
                    pass
        _reap(sock, children)
        if sock not in ready:
            continue
        message, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 2)
        if not message:
            for pid in children:
                _kill_group(pid)
            os._exit(0)
        _, request, path, modules = pickle.loads(message)
        sys.path[:0] = [p for p in path if p not in sys.path]
        for module in modules:
            if module not in imported:
                imported.add(module)
                with contextlib.suppress(Exception):
                    importlib.import_module(module)
        pid = _fork(sock, wakeup, fds)
        children.add(pid)
        sock.send(pickle.dumps(("forked", request, pid)))


class Zygote:
    """The worker's side of its helper: forks job processes, reports their
    exits. One per worker process (``get()``), started on first use."""

    _lock = threading.Lock()
    _current: Zygote | None = None

    @classmethod
    def get(cls) -> Zygote:
        with cls._lock:
            if cls._current is None or cls._current._closed:
                cls._current = cls()
            return cls._current

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "preload.runners.dask_zygote",
                    str(theirs.fileno()),
                ],
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        self._sock = ours
        self._send_lock = threading.Lock()
        self._cond = threading.Condition()
        self._requests = 0
        self._forked: dict[int, int] = {}  # request -> pid
        self._exits: dict[int, int | None] = {}  # pid -> exit code
        self._closed = False
        threading.Thread(target=self._read, name="preload-zygote", daemon=True).start()

    @classmethod
    def stop(cls) -> None:
        """End the helper of this worker, if it runs (its job processes with it)."""
        with cls._lock:
            zygote, cls._current = cls._current, None
        if zygote is not None:
            with contextlib.suppress(OSError):
                zygote._sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(subprocess.TimeoutExpired):
                zygote._proc.wait(STOP_WAIT)

    def _read(self) -> None:
        while True:
            try:
                message = self._sock.recv(MAX_MESSAGE)
            except OSError:
                message = b""
            with self._cond:
                if not message:
                    # The helper died: its job processes' exits are unknown.
                    self._closed = True
                    self._cond.notify_all()
                    self._proc.wait()
                    return
                kind, key, value = pickle.loads(message)
                if kind == "forked":
                    self._forked[key] = value
                else:
                    self._exits[key] = value
                self._cond.notify_all()

    def fork(self, control: int, frames: int, modules: tuple[str, ...]) -> int:
        """Start a job process that runs ``dask_child.main(control, frames)``;
        its pid. RuntimeError if the helper is gone."""
        with self._cond:
            self._requests += 1
            request = self._requests
        message = pickle.dumps(("fork", request, sys.path, modules))
        with self._send_lock:
            socket.send_fds(self._sock, [message], [control, frames])
        with self._cond:
            self._cond.wait_for(lambda: request in self._forked or self._closed)
            if request not in self._forked:
                raise RuntimeError("the job processes' helper process died")
            return self._forked.pop(request)

    def wait(self, pid: int, timeout: float | None) -> bool:
        """True once job process *pid* has ended (or the helper died, and
        with it what we could know of it); False if *timeout* passed first."""
        with self._cond:
            return self._cond.wait_for(
                lambda: pid in self._exits or self._closed, timeout
            )

    def exit_code(self, pid: int) -> int | None:
        """How job process *pid* ended (< 0: the signal that killed it);
        None if unknown."""
        with self._cond:
            return self._exits.get(pid)

    def forget(self, pid: int) -> None:
        """Drop what is known of job process *pid*."""
        with self._cond:
            self._exits.pop(pid, None)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
