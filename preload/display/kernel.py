"""A blocking call's wait in a Jupyter kernel, handling widget messages.

A kernel's main thread runs the cell, and it alone handles the messages of
the frontend (ipykernel 7 passes them from its shell channel thread to the
main thread through an inproc socket, read by the main thread's event loop).
While a blocking call waits for its jobs, that loop does not run, so a click
on the panel's Cancel button would be handled only after the cell. Here the
wait reads that socket itself: comm messages (widget events) are handled at
once; every other message (the next cells' execute requests, completions)
is handed back to the event loop, in order, for after the cell.

Where the kernel is not ipykernel 7 (or later changes its internals), the
wait is a plain wait and Cancel takes effect after the cell.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

POLL = 0.05
"""Seconds between two reads of the kernel's messages."""

COMM_MESSAGES = frozenset({"comm_open", "comm_msg", "comm_close"})

logger = logging.getLogger(__name__)


def _main_shell(kernel: Any) -> tuple[Any, Any] | None:
    """The main shell's end of ipykernel 7's inproc socket, and the stream its
    handlers reply on; None for another kernel."""
    thread = getattr(kernel, "shell_channel_thread", None)
    manager = getattr(thread, "manager", None)
    pair = getattr(manager, "_shell_channel_to_main", None)
    socket = getattr(pair, "to_socket", None)
    if socket is None or not hasattr(kernel, "shell_main"):
        return None
    return socket, manager.get_subshell_to_shell_channel_socket(None)


def _kernel() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return getattr(get_ipython(), "kernel", None)


def wait_processing_ui(ended: Callable[[float | None], bool]) -> None:
    """Call ``ended(POLL)`` until it returns True, handling the kernel's
    widget messages in between."""
    kernel = _kernel()
    shell = _main_shell(kernel) if kernel is not None else None
    if shell is None:
        ended(None)
        return
    import zmq

    socket, stream = shell
    deferred: list[Any] = []
    try:
        while not ended(POLL):
            while True:
                try:
                    frames = socket.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                if not _handle_comm(kernel, stream, frames):
                    deferred.append(frames)
    finally:
        # In order, before what the loop reads from the socket afterwards.
        handle = partial(kernel.shell_main, None)
        for frames in deferred:
            kernel.io_loop.add_callback(handle, frames)


def _handle_comm(kernel: Any, stream: Any, frames: list[Any]) -> bool:
    """Handle *frames* if they are a comm message; False if they are not."""
    session = kernel.session
    try:
        idents, parts = session.feed_identities(frames, copy=False)
        # A peek: the session remembers the signatures of messages it has
        # read whole, and drops a message it reads twice.
        kind = session.deserialize(parts, content=False, copy=False)["header"]
        kind = kind["msg_type"]
    except Exception:
        return False  # for the kernel's own handling, which logs it
    handler = kernel.shell_handlers.get(kind)
    if kind not in COMM_MESSAGES or handler is None:
        return False
    try:
        msg = session.deserialize(parts, content=True, copy=False)
    except Exception:
        logger.exception("a widget's message could not be read")
        return True
    try:
        result = handler(stream, idents, msg)
    except Exception:
        logger.exception("a widget's message handler failed")
        return True
    close = getattr(result, "close", None)
    if close is not None:  # a coroutine: a kernel we do not know; not run
        close()
    return True


class Interrupted(KeyboardInterrupt):
    """The KeyboardInterrupt a blocking call raises in a kernel, once it has
    cancelled its run. IPython shows it as two short lines (what we did, and
    the interrupt) instead of a traceback through the library."""

    def _render_traceback_(self) -> list[str]:
        return [str(self), "KeyboardInterrupt"]


def interrupted(cancelled: int) -> KeyboardInterrupt:
    jobs = "job" if cancelled == 1 else "jobs"
    return Interrupted(f"preload: interrupted, {cancelled} {jobs} cancelled")
