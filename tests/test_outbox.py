"""The worker-side outbox, in one process: coalescing, order and counts."""

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
    tail, count = outbox.take("a")
    assert (tail, count) == ([], 2)


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
    tail, count = outbox.take("a")
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
    tail, count = outbox.take("a")
    # Either still queued (in the tail) or counted as sent: never lost.
    assert count + len(tail) >= 2
    assert sent.count_for("a") == count
