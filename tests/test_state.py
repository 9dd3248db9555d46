import pickle

import pytest

from preload import PreloadState, PreloadStatus
from preload.display import format_table


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
