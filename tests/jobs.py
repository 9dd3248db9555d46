"""Preload functions the tests run in worker processes (importable by name)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from preload import ExecutorPreloadHandle, PreloadState, PreloadStatus

# The process that imported this module: a forkserver that preloads it passes
# it on to the workers it forks.
IMPORTED_BY = os.getpid()


def where_imported(handle, data_id):
    """Says whether this worker imported this module or inherited it."""
    inherited = os.getpid() != IMPORTED_BY
    handle.notify(PreloadState(data_id, message="inherited" if inherited else "here"))


def ticks(handle, data_id, n=10, pause=0.001):
    """The seed's job, short: progress, a message every few ticks, "Done."."""
    for i in range(n):
        time.sleep(pause)
        if handle.cancelled:
            handle.notify(PreloadState(data_id, status=PreloadStatus.cancelled))
            return
        handle.notify(PreloadState(data_id, progress=i / n))
        if i % 3 == 0:
            handle.notify(PreloadState(data_id, message=f"Step #{i // 3 + 1}"))
    handle.notify(PreloadState(data_id, progress=1.0, message="Done."))


def fail(handle, data_id):
    handle.notify(PreloadState(data_id, message="about to fail"))
    raise ValueError(f"cannot preload {data_id}")


class LockedError(Exception):
    """An exception that cannot be pickled (it holds a lock)."""

    def __init__(self, message):
        super().__init__(message)
        self.lock = threading.Lock()


def fail_unpicklable(handle, data_id):
    raise LockedError(f"locked {data_id}")


def notify(handle, data_id, to_id=None, **fields):
    """Notify one state built from *fields*, for *to_id* if given."""
    handle.notify(PreloadState(to_id or data_id, **fields))


def many_messages(handle, data_id, n=200):
    for i in range(n):
        handle.notify(PreloadState(data_id, progress=(i + 1) / n))
        handle.notify(PreloadState(data_id, message=f"m{i}"))


def instant(handle, data_id):
    """Returns at once; ids ending in an odd digit fail."""
    if int(data_id[-1]) % 2:
        raise RuntimeError(f"odd {data_id}")


def gate(handle, data_id, path):
    """Runs until *path* exists (then completes) or until cancelled."""
    Path(path, f"started-{data_id.replace('/', '_')}").touch()
    while not Path(path, "open").exists():
        if handle.cancelled:
            return
        time.sleep(0.002)


def stubborn(handle, data_id, path):
    """Never looks at cancelled; starts a child process that sleeps too."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    name = data_id.replace("/", "_")
    write_whole(Path(path, f"child-{name}"), str(child.pid))
    write_whole(Path(path, f"started-{name}"), str(os.getpid()))
    time.sleep(60)


def write_whole(path: Path, text: str) -> None:
    """Write so that a reader never sees the file empty or in part."""
    part = path.with_name(f".{path.name}.part")
    part.write_text(text)
    part.rename(path)


class PrefixHandle(ExecutorPreloadHandle):
    """xcube-zenodo's pattern: the handle's own method does the work."""

    def __init__(self, data_ids, prefix, **kwargs):
        self.prefix = prefix
        super().__init__(data_ids, **kwargs)

    def preload_data(self, data_id, **params):
        self.notify(PreloadState(data_id, progress=0.5))
        self.notify(
            PreloadState(data_id, message=f"{self.prefix}:{data_id}:{os.getpid()}")
        )
        if self.cancelled:
            return


def cancel_then_more(handle, data_id):
    """Ends itself CANCELLED, then keeps notifying: the status stays CANCELLED."""
    handle.notify(PreloadState(data_id, message="stopping"))
    handle.notify(PreloadState(data_id, status=PreloadStatus.cancelled))
    handle.notify(PreloadState(data_id, progress=1.0, message="too late"))
    handle.notify(PreloadState(data_id, status=PreloadStatus.completed))


def report_error(handle, data_id):
    """Notifies an exception of a class the parent cannot import."""
    error_class = type("LocalError", (Exception,), {})
    handle.notify(PreloadState(data_id, exception=error_class("reported")))


def record_pid(path, data_id):
    """Leaves this process's pid in *path* (a folder), one file per job."""
    name = data_id.replace("/", "_")
    write_whole(Path(path, f"pid-{name}-{os.getpid()}"), str(os.getpid()))


def crash(handle, data_id, path, how):
    """Dies as *how* says, once a job named "steady..." runs beside it."""
    record_pid(path, data_id)
    deadline = time.monotonic() + 10
    while not list(Path(path).glob("pid-steady*")) and time.monotonic() < deadline:
        time.sleep(0.005)
    if how == "exit":
        os._exit(3)
    if how == "sigkill":
        os.kill(os.getpid(), 9)
    if how == "segfault":
        import ctypes

        ctypes.string_at(0)


def steady(handle, data_id, path, seconds=0.6):
    """Runs *seconds* in ticks (cooperative), leaving a file per attempt."""
    record_pid(path, data_id)
    ticks = 30
    for i in range(ticks):
        if handle.cancelled:
            return
        time.sleep(seconds / ticks)
        handle.notify(PreloadState(data_id, progress=(i + 1) / ticks))
    handle.notify(PreloadState(data_id, message="Done."))


def mixed(handle, data_id, path, roles):
    """Runs the job roles[data_id] names: steady[:s], stubborn, gate, crash:how."""
    role = roles[data_id]
    if role.startswith("steady"):
        steady(handle, data_id, path, *map(float, role.split(":")[1:]))
    elif role == "stubborn":
        stubborn(handle, data_id, path)
    elif role == "gate":
        gate(handle, data_id, path)
    else:
        crash(handle, data_id, path, role.split(":")[1])


def returns_a_lock(handle, data_id):
    return threading.Lock()


def exit_soon(handle, data_id, path):
    """Ids starting with "exit" leave their worker 0.2 s after start; others gate."""
    if not data_id.startswith("exit"):
        gate(handle, data_id, path)
        return
    time.sleep(0.2)
    os._exit(5)


class TwoArgumentExit(BaseException):
    """Pickles in a worker, fails to unpickle in the parent (needs two arguments)."""

    def __init__(self, what, why):
        super().__init__(f"{what}: {why}")


def break_after(handle, data_id, path, how):
    """Once a job named "innocent..." runs, ends so that its pool breaks after
    the job: a result the parent cannot unpickle, or its worker's fds closed."""
    record_pid(path, data_id)
    deadline = time.monotonic() + 10
    while not list(Path(path).glob("pid-innocent*")) and time.monotonic() < deadline:
        time.sleep(0.005)
    if how == "unpicklable":
        raise TwoArgumentExit("cannot", "unpickle")
    os.closerange(3, 1024)


def pool_breaker(handle, data_id, path, how):
    """Ids starting with "guilty" break the pool after their job; others are steady."""
    if data_id.startswith("guilty"):
        break_after(handle, data_id, path, how)
    else:
        steady(handle, data_id, path, 0.6)


def done_but_running(handle, data_id, path):
    """Reports itself COMPLETED, then keeps running (a stuck download after "done")."""
    handle.notify(PreloadState(data_id, status=PreloadStatus.completed))
    write_whole(Path(path, f"started-{data_id}"), str(os.getpid()))
    time.sleep(60)


def detached_grandchild(handle, data_id, path):
    """Starts a grandchild that the shell leaves behind, then never stops."""
    out = subprocess.run(
        ["sh", "-c", "sleep 1001 >/dev/null 2>&1 & echo $!"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    write_whole(Path(path, f"grandchild-{data_id}"), out.strip())
    time.sleep(60)


def hog(handle, data_id, chunks=25, size=20 << 20, pause=0.02):
    """Ids starting with "hog" hold ever more memory (*chunks* of *size*
    bytes, then return); others tick for a second."""
    if not data_id.startswith("hog"):
        ticks(handle, data_id, n=20, pause=0.05)
        return
    held = []
    for _ in range(chunks):
        held.append(b"\x01" * size)
        time.sleep(pause)


def notify_a_lock(handle, data_id):
    """Reports a message that is not a str (xcube's PreloadState takes it)."""
    handle.notify(PreloadState(data_id, message=threading.Lock()))


def notify_unsendable(handle, data_id):
    """Reports a message that passes the checks, but its send fails (as on a
    channel that broke)."""
    handle.notify(PreloadState(data_id, message="before"))
    outbox = handle._outbox
    send = outbox._send

    def refuse(batch):
        if any(message[3] == "refused" for message in batch):
            raise OSError("the channel refused it")
        send(batch)

    outbox._send = refuse
    handle.notify(PreloadState(data_id, message="refused"))
    # Work on, so that the sender thread sends it (ticks of 5 ms) before the
    # job ends (else it travels with the outcome).
    time.sleep(0.2)


def progress_sums_to_one(handle, data_id):
    """Progress summed from parts: 1.0000000000000002."""
    handle.notify(PreloadState(data_id, progress=0.34 + 0.56 + 0.1))


def helper_thread(handle, data_id):
    """A job whose helper thread reports, finds its job and waits for cancel."""
    from preload.worker import current_job

    def helper():
        found = current_job(handle.end.token) is handle
        handle.notify(PreloadState(data_id, message=f"helper found its job: {found}"))
        deadline = time.monotonic() + 10
        while not handle.cancelled and time.monotonic() < deadline:
            time.sleep(0.005)
        handle.notify(PreloadState(data_id, message="helper saw cancel"))

    thread = threading.Thread(target=helper)
    thread.start()
    thread.join()


class DownloadHandle(ExecutorPreloadHandle):
    """A subclass whose preload_data reports from a download thread of its own."""

    def preload_data(self, data_id, **params):
        def download():
            self.notify(PreloadState(data_id, message="downloading"))
            deadline = time.monotonic() + 10
            while not self.cancelled and time.monotonic() < deadline:
                time.sleep(0.005)
            self.notify(PreloadState(data_id, message="download stopped"))

        thread = threading.Thread(target=download)
        thread.start()
        thread.join()


def gate_with_payload(handle, data_id, path, payload):
    """gate(), with a big parameter it reports the size of."""
    handle.notify(PreloadState(data_id, message=f"{len(payload)} bytes"))
    gate(handle, data_id, path)


def by_name(handle, data_id, path=None):
    """Batching: the id names what the job does. "raise-N" raises a ValueError
    naming its id, "cancel-N" reports CANCELLED, "msg-N" reports a message
    naming its id, "exit-N" kills its worker, "hang-N" never ends nor looks at
    cancelled, "sysexit-N" raises SystemExit, "sleep-N" sleeps 2 ms; others
    return at once."""
    kind = data_id.split("-")[0]
    if kind == "raise":
        raise ValueError(f"failed: {data_id}")
    if kind == "cancel":
        handle.notify(PreloadState(data_id, status=PreloadStatus.cancelled))
    elif kind == "msg":
        handle.notify(PreloadState(data_id, message=f"for {data_id}"))
    elif kind == "exit":
        os._exit(3)
    elif kind == "hang":
        record_pid(path, data_id)
        while True:
            time.sleep(0.01)
    elif kind == "sysexit":
        raise SystemExit(f"exit in {data_id}")
    elif kind == "sleep":
        time.sleep(0.002)


def child_beside_a_crash(handle, data_id, path):
    """The job "busy" starts a child process (its first attempt only) and runs until
    *path*/open exists; "crash" kills its worker once that child runs."""
    if data_id == "busy":
        if not list(Path(path).glob("child-*")):
            child = subprocess.Popen(
                [sys.executable, "-c", "import time; time.sleep(60)"]
            )
            write_whole(Path(path, "child-busy"), str(child.pid))
        while not Path(path, "open").exists():
            time.sleep(0.005)
        return
    deadline = time.monotonic() + 10
    while not Path(path, "child-busy").exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    os._exit(3)


def changes_its_worker(handle, data_id):
    """ "change" leaves its worker in another folder, with another environment
    and SIGTERM handler; the others report what they find."""
    if data_id == "change":
        os.chdir("/")
        os.environ["PRELOAD_LEFT_BEHIND"] = "1"
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        return
    found = (
        os.getcwd(),
        os.environ.get("PRELOAD_LEFT_BEHIND"),
        signal.getsignal(signal.SIGTERM),
    )
    handle.notify(PreloadState(data_id, message=repr(found)))


class Unreadable:
    """Unpickles in every process but the one of *pid*, where it raises."""

    def __init__(self, pid):
        self.pid = pid

    def __reduce__(self):
        return _unreadable, (self.pid,)


def _unreadable(pid):
    if os.getpid() == pid:
        raise ValueError("cannot be read in this process")
    return Unreadable(pid)
