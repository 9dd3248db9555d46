import math
import pickle
import threading

import pytest

from preload import PreloadState, PreloadStatus
from preload.display import format_table
from preload.state import check_update, to_message


def test_status_members_text_and_order():
    assert [s.value for s in PreloadStatus] == [
        "waiting",
        "started",
        "completed",
        "cancelled",
        "failed",
    ]
    assert str(PreloadStatus.started) == "STARTED"
    assert repr(PreloadStatus.started) == "PreloadStatus.started"
    assert [s.is_final for s in PreloadStatus] == [False, False, True, True, True]


def test_state_str_and_repr_show_known_fields_in_order():
    state = PreloadState(
        "test.zip", message="Unzipping", progress=0.71, status=PreloadStatus.started
    )
    assert str(state) == (
        "data_id=test.zip, status=STARTED, progress=0.71, message=Unzipping"
    )
    assert repr(state) == (
        "PreloadState(data_id='test.zip', status=PreloadStatus.started,"
        " progress=0.71, message='Unzipping')"
    )
    assert repr(PreloadState("x")) == "PreloadState(data_id='x')"


def test_update_merges_fields_that_are_not_none():
    state = PreloadState("a", PreloadStatus.started, 0.2, "one")
    state.update(PreloadState("a", progress=0.5))
    assert state == PreloadState("a", PreloadStatus.started, 0.5, "one")
    error = ValueError("x")
    state.update(PreloadState("a", status=PreloadStatus.failed, exception=error))
    assert state == PreloadState("a", PreloadStatus.failed, 0.5, "one", error)


def test_update_refuses_another_id_or_type():
    with pytest.raises(ValueError, match="'b'"):
        PreloadState("a").update(PreloadState("b"))
    with pytest.raises(TypeError):
        PreloadState("a").update({"data_id": "a"})


def test_state_pickles_and_copies():
    state = PreloadState("a", PreloadStatus.cancelled, 1.0, "m")
    assert pickle.loads(pickle.dumps(state)) == state
    copy = state.copy()
    copy.progress = 0.0
    assert state.progress == 1.0


def test_state_needs_a_data_id():
    with pytest.raises(ValueError):
        PreloadState("")


def test_table_has_xcube_columns_and_formats():
    states = [
        PreloadState("tt-data/dipsy.zarr", PreloadStatus.started, 0.375, "Step #4"),
        PreloadState("b", PreloadStatus.failed, exception=ValueError("boom")),
    ]
    text = format_table(states)
    lines = [line.split() for line in text.splitlines()]
    assert lines[0] == ["Data", "ID", "Status", "Progress", "Message", "Exception"]
    assert set(text.splitlines()[1]) == {"-", " "}
    assert lines[2] == ["tt-data/dipsy.zarr", "STARTED", "38%", "Step", "#4", "-"]
    assert lines[3] == ["b", "FAILED", "-", "-", "boom"]
    html = format_table(states, "html")
    assert html.startswith("<table>") and "<td>38%</td>" in html.replace(" ", "")


def test_check_update_clamps_progress_a_rounding_error_off():
    ids = {"a"}
    state = PreloadState("a", progress=0.34 + 0.56 + 0.1)
    assert state.progress > 1.0
    checked = check_update(state, ids)
    assert checked.progress == 1.0 and type(checked.progress) is float
    assert state.progress > 1.0  # the caller's state is left as it was
    assert check_update(PreloadState("a", progress=-1e-12), ids).progress == 0.0
    assert check_update(PreloadState("a", progress=1), ids).progress == 1.0
    assert type(check_update(PreloadState("a", progress=1), ids).progress) is float
    fine = PreloadState("a", progress=0.5, message="m")
    assert check_update(fine, ids) is fine
    for progress in (1 + 1e-8, -1e-8, math.nan, math.inf):
        with pytest.raises(ValueError, match="progress must be in"):
            check_update(PreloadState("a", progress=progress), ids)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"message": threading.Lock()}, "message must be a str or None"),
        ({"message": b"bytes"}, "message must be a str or None"),
        ({"progress": True}, "progress must be a number"),
        ({"progress": "0.5"}, "progress must be a number"),
        ({"status": "started"}, "status must be a PreloadStatus"),
        ({"exception": "boom"}, "exception must be an exception or None"),
    ],
)
def test_check_update_refuses_fields_of_the_wrong_type(fields, match):
    # xcube's PreloadState takes any value; notify() checks them.
    state = PreloadState("a", **fields)
    with pytest.raises(TypeError, match=match):
        check_update(state, {"a"})


def test_a_message_on_the_wire_holds_plain_strs():
    # A str subclass (an enum's member, a class of the job's module) need
    # not unpickle where the message goes.
    class Label(str):
        pass

    message = to_message(PreloadState(Label("a"), message=Label("downloading")))
    assert message == ("a", None, None, "downloading", None)
    assert type(message[0]) is str and type(message[3]) is str
