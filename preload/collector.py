"""The collector: one thread in the parent that applies what jobs report.

It reads one inbox, fed by
* the channel, with batches of messages the jobs posted,
* the executor's done callbacks, with each job's ``Outcome``, and
* the handle, with updates reported from outside the jobs.

A job's outcome can overtake its last messages (they travel different
ways), so an outcome waits ("parked") until as many messages of its data id
as the job sent have arrived; then the messages that travelled with the
outcome are applied, then the final status.

When every job has ended, the collector calls its ``on_done`` callback once
(the engine then releases the run). After ``stop()`` the thread is gone and
updates from outside the jobs (a subclass's ``close()`` that reports a last
message, say) are applied in the caller's thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from .display import Display
from .errors import PackedError, unpack
from .state import STATUS_BY_VALUE, Message, PreloadState, to_message
from .states import StateTable
from .worker import Outcome

logger = logging.getLogger(__name__)

_MESSAGES, _UPDATE, _OUTCOMES, _LOST, _SYNC, _STOP = range(6)


class Collector:
    """Applies job messages and outcomes to a ``StateTable``, in order."""

    def __init__(
        self,
        table: StateTable,
        display: Display | None = None,
        on_done: Callable[[], None] | None = None,
    ):
        self._table = table
        self._display = display
        self._on_done = on_done
        self._changed = False
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._received: dict[str, int] = {}
        self._parked: dict[str, Outcome] = {}
        self._channel_ok = True
        self._thread = threading.Thread(
            target=self._run, name="preload-collector", daemon=True
        )
        self._thread.start()

    def deliver(self, batch: list[Message]) -> None:
        """Take a batch of messages from the channel (any thread)."""
        self._inbox.put((_MESSAGES, batch))

    def post_update(self, update: PreloadState) -> None:
        """Take a state change reported from outside the jobs (any thread)."""
        with self._stop_lock:
            if not self._stopped:
                self._inbox.put((_UPDATE, update))
                return
            self._apply(to_message(update))
            self._redraw()

    def redraw(self) -> None:
        """After ``stop()``: draw a display that updates in place once more, in
        the caller's thread. A notebook records a widget's update with the cell
        running when it is sent, and the run may have ended between two cells:
        a ``wait()`` or ``close()`` cell then carries the final state."""
        with self._stop_lock:
            if self._stopped:
                self._redraw()

    def _redraw(self) -> None:
        # With the stop lock held, the thread gone.
        if self._display is not None and self._display.updates_in_place:
            self._show(self._display.draw)

    def post_outcome(self, data_id: str, outcome: Outcome) -> None:
        """Take the outcome of the job of *data_id* (any thread)."""
        self._inbox.put((_OUTCOMES, [(data_id, outcome)]))

    def post_outcomes(self, outcomes: list[tuple[str, Outcome]]) -> None:
        """Take the outcomes of many jobs (data id, outcome) at once: those
        of a batch, for one pass through the inbox (any thread)."""
        self._inbox.put((_OUTCOMES, outcomes))

    def channel_lost(self) -> None:
        """The channel broke: apply outcomes without waiting for messages."""
        self._inbox.put((_LOST,))

    def sync(self, timeout: float | None = None) -> bool:
        """Wait until everything posted before this call is applied."""
        if self._stopped:
            return True
        applied = threading.Event()
        self._inbox.put((_SYNC, applied))
        return applied.wait(timeout)

    def stop(self) -> None:
        """Apply what is in the inbox, then the parked outcomes, and end."""
        with self._stop_lock:
            if not self._stopped:
                self._inbox.put((_STOP,))
                self._thread.join()
                self._stopped = True

    def _run(self) -> None:
        next_refresh = 0.0
        while True:
            if self._display is None:
                item = self._inbox.get()
            else:
                now = time.monotonic()
                if now >= next_refresh:
                    next_refresh = now + self._display.interval
                    self._show(self._display.refresh, self._changed)
                    self._changed = False
                try:
                    item = self._inbox.get(timeout=max(0.0, next_refresh - now))
                except queue.Empty:
                    continue
            kind = item[0]
            if kind == _MESSAGES:
                for message in item[1]:
                    self._apply_message(message)
            elif kind == _UPDATE:
                self._apply(to_message(item[1]))
            elif kind == _OUTCOMES:
                for data_id, outcome in item[1]:
                    self._park_or_finish(data_id, outcome)
            elif kind == _LOST:
                self._channel_ok = False
                for data_id, outcome in list(self._parked.items()):
                    self._finish(data_id, outcome)
            elif kind == _SYNC:
                item[1].set()
            else:
                for data_id, outcome in list(self._parked.items()):
                    self._finish(data_id, outcome)
                if self._display is not None:
                    self._show(self._display.finish)
                return

    def _apply_message(self, message: Message) -> None:
        data_id = message[0]
        self._received[data_id] = self._received.get(data_id, 0) + 1
        self._apply(message)
        outcome = self._parked.get(data_id)
        if outcome is not None and self._received[data_id] >= outcome.sent:
            self._finish(data_id, outcome)

    def _park_or_finish(self, data_id: str, outcome: Outcome) -> None:
        if not self._channel_ok or self._received.get(data_id, 0) >= outcome.sent:
            self._finish(data_id, outcome)
        else:
            self._parked[data_id] = outcome

    def _finish(self, data_id: str, outcome: Outcome) -> None:
        self._parked.pop(data_id, None)
        for message in outcome.tail:
            self._apply(message)
        self._apply((data_id, outcome.status, None, None, outcome.exception))

    def _apply(self, message: Message) -> None:
        data_id, status, progress, text, exception = message
        if status is not None:
            status = STATUS_BY_VALUE[status]
        if isinstance(exception, PackedError):
            exception = unpack(exception)
        self._changed = True
        if not self._table.apply(data_id, status, progress, text, exception):
            return
        if self._display is not None and self._display.follows_statuses:
            self._show(self._display.status_changed, self._table.get(data_id))
        # Only a final status can end the run.
        if not status.is_final or not self._table.all_final:
            return
        if self._on_done is not None:
            # Before settle() wakes the waiters: they then find the release
            # under way.
            on_done, self._on_done = self._on_done, None
            on_done()
        self._table.settle()

    def _show(self, method, *args) -> None:
        try:
            method(*args)
        except Exception:
            # A broken display must not stop the jobs' bookkeeping.
            logger.exception("the display failed; nothing more is shown")
            self._display = None
