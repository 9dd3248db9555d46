"""preload.convert's preload_data, stopped at a chosen point (importable by name)."""

from __future__ import annotations

import os
import signal
import time

from preload import NullPreloadHandle, PreloadState
from preload.convert import preload_data

SECOND_VARIABLE = "(2/"  # in the message "converting x.nc: lat (2/8)"


class Watch(NullPreloadHandle):
    """Passes a job's handle through, calling *on_message* on each message."""

    def __init__(self, handle, on_message):
        self._handle = handle
        self._on_message = on_message

    @property
    def cancelled(self) -> bool:
        return self._handle.cancelled

    def notify(self, state: PreloadState) -> None:
        self._handle.notify(state)
        if state.message is not None:
            self._on_message(state.message)


def convert_until_cancelled(handle, data_id, **params):
    """Converts until its second variable, then waits for cancel() (up to 20 s)."""

    def wait_for_cancel(message):
        if SECOND_VARIABLE in message:
            deadline = time.monotonic() + 20
            while not handle.cancelled and time.monotonic() < deadline:
                time.sleep(0.005)

    preload_data(Watch(handle, wait_for_cancel), data_id, **params)


def convert_then_die(handle, data_id, **params):
    """Its worker is killed (SIGKILL) as it starts its second variable."""

    def die(message):
        if SECOND_VARIABLE in message:
            os.kill(os.getpid(), signal.SIGKILL)

    preload_data(Watch(handle, die), data_id, **params)
