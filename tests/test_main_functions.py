"""Functions defined in a script's __main__ (lambdas, closures, subclasses) reach
workers under every start method."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    from preload import ExecutorPreloadHandle, PreloadState

    def job(handle, data_id, suffix):
        handle.notify(PreloadState(data_id, message=data_id + suffix))

    def make_closure(word):
        def closure(handle, data_id):
            handle.notify(PreloadState(data_id, message=word))
        return closure

    class MainHandle(ExecutorPreloadHandle):
        def preload_data(self, data_id):
            self.notify(PreloadState(data_id, message=self.word))

    class MainError(Exception):
        pass

    def failing(handle, data_id):
        raise MainError("from main")

    if __name__ == "__main__":
        context = sys.argv[1]
        run = dict(silent=True, mp_context=context)
        for function, kwargs in [
            (job, {"suffix": "!"}),
            (lambda h, d: h.notify(PreloadState(d, message="lambda")), {}),
            (make_closure("closure"), {}),
            (failing, {}),
        ]:
            handle = ExecutorPreloadHandle(["a", "b"], function, **run, **kwargs)
            for s in handle.states:
                print(s.status, s.message, type(s.exception).__name__)
        handle = MainHandle.__new__(MainHandle)
        handle.word = "subclass"
        handle.__init__(["a"], **run)
        print(handle.states[0].status, handle.states[0].message)
    """
)

EXPECTED = """\
COMPLETED a! NoneType
COMPLETED b! NoneType
COMPLETED lambda NoneType
COMPLETED lambda NoneType
COMPLETED closure NoneType
COMPLETED closure NoneType
FAILED None MainError
FAILED None MainError
COMPLETED subclass
"""


@pytest.mark.parametrize("context", ["fork", "forkserver", "spawn"])
def test_main_functions_run_in_workers(tmp_path, context):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, str(script), context],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == EXPECTED
