"""The worker-side outbox, in one process: coalescing, order and counts."""

import pickle
import threading

from preload.outbox import PROGRESS_INTERVAL, CoalescingOutbox

from tests_support import Recorder


def test_urgent_messages_keep_order_and_carry_pending_progress():
    sent = Recorder()
    outbox = CoalescingOutbox(sent)
    outbox.post(("a", "started", None, None, None))
    assert sent.wait_for(1)
    outbox.post_progress("a", 0.3)
    outbox.post(("a", None, None, "step", None))
    assert sent.wait_for(2)
    messages = sent.messages()
    assert messages[0] == ("a", "started", None, None, None)
    assert messages[1] == ("a", None, 0.3, "step", None)
    assert outbox.take("a") == ([], 2, None)


def test_progress_is_coalesced_to_the_newest():
    sent = Recorder()
    outbox = CoalescingOutbox(sent)
    done = threading.Event()
    # Post for about six intervals, as fast as possible.
    timer = threading.Timer(PROGRESS_INTERVAL * 6, done.set)
    timer.start()
    posts = 0
    while not done.is_set():
        posts += 1
        outbox.post_progress("a", min(1.0, posts / 1e9))
    tail, count, error = outbox.take("a")
    assert error is None
    received = sent.messages()
    assert count == len(received)
    assert posts > 1000
    assert len(received) <= 10, "progress should go at most every interval"
    last = (tail or received)[-1]
    assert last == ("a", None, min(1.0, posts / 1e9), None, None)


def test_take_returns_unsent_messages_and_count_per_id():
    sent = Recorder(block=True)
    outbox = CoalescingOutbox(sent)
    outbox.post(("a", "started", None, None, None))
    assert sent.entered.wait(5)  # the sender is stuck in its first send
    outbox.post(("a", None, None, "m1", None))
    outbox.post(("b", None, None, "m2", None))
    outbox.post_progress("a", 0.5)
    sent.release.set()
    tail, count, _ = outbox.take("a")
    # Either still queued (in the tail) or counted as sent: never lost.
    assert count + len(tail) >= 2
    assert sent.count_for("a") == count


class Unpicklable:
    """A value that cannot be sent to another process (it holds a lock)."""

    def __init__(self):
        self.lock = threading.Lock()


def test_a_failed_send_is_not_counted_and_is_reported():
    sent = Recorder()

    def send(batch):
        pickle.dumps(batch)  # as a Manager queue proxy does
        sent(batch)

    outbox = CoalescingOutbox(send)
    outbox.post(("a", "started", None, None, None))
    assert sent.wait_for(1)
    # In one batch or in several, as the sender thread finds them.
    outbox.post(("a", None, None, "before", None))
    outbox.post(("a", None, None, Unpicklable(), None))
    outbox.post(("a", None, None, "after", None))
    assert sent.wait_for(3)
    tail, count, error = outbox.take("a")
    # The messages that could be sent were; the other one is not counted.
    assert [m[3] for m in sent.messages()] == [None, "before", "after"]
    assert (tail, count) == ([], 3)
    assert isinstance(error, RuntimeError)
    assert "a state reported for 'a' could not be sent to the parent" in str(error)
    assert "TypeError: cannot pickle '_thread.lock' object" in str(error)
    # Reported once: the next job of this worker starts clean.
    assert outbox.take("b") == ([], 0, None)
