"""Output that is never left half-written: a private folder beside the target,
renamed to the target only when complete.

The folder is named ``.<target>.partial-<pid>-<start time>`` after the process
that owns it. A folder whose process is gone (a worker that was killed) is stale:
the next job for the same target removes it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psutil

_MARK = ".partial-"


def _owner_tag(process: psutil.Process) -> str:
    return f"{process.pid}-{int(process.create_time() * 1000)}"


def _is_stale(folder: Path) -> bool:
    pid, _, started = folder.name.rpartition(_MARK)[2].partition("-")
    started = started.split("-")[0]
    try:
        process = psutil.Process(int(pid))
        return _owner_tag(process) != f"{pid}-{started}"
    except (ValueError, psutil.NoSuchProcess):
        return True


class Staging:
    """A private folder in which a job builds what it will publish as *target*.

    Build ``result`` (a file or folder path inside the staging folder), then
    ``commit()``. ``discard()`` removes whatever is left; call it in any case.
    """

    def __init__(self, target: Path):
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        tag = _owner_tag(psutil.Process())
        self.folder = target.with_name(f".{target.name}{_MARK}{tag}")
        self.folder.mkdir()
        self.result = self.folder / target.name

    def commit(self, replace: bool) -> bool:
        """Publish ``result`` as the target; False if a target already there is
        kept (``replace`` false; another job published it meanwhile)."""
        if self.target.exists():
            if not replace:
                return False
            old = self.folder.with_name(f"{self.folder.name}-old")
            os.rename(self.target, old)
            os.rename(self.result, self.target)
            shutil.rmtree(old)
            return True
        try:
            os.rename(self.result, self.target)
        except OSError:
            # Published by another job between the check and the rename.
            if self.target.exists() and not replace:
                return False
            raise
        return True

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _remove_stale(self) -> None:
        pattern = f".{self.target.name}{_MARK}*"
        for folder in self.target.parent.glob(pattern):
            if _is_stale(folder):
                shutil.rmtree(folder, ignore_errors=True)
