"""Output that is never left half-written: a private folder beside the target,
renamed to the target only when complete.

The folder is named ``.<target>.partial-<pid>-<start time>-<random>`` after the
process that owns it. A folder whose process is gone (a worker that was killed)
is stale: the next job for the same target removes it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import psutil

_MARK = ".partial-"


def _owner_tag(process: psutil.Process) -> str:
    return f"{process.pid}-{int(process.create_time() * 1000)}"


def _is_stale(folder: Path) -> bool:
    """True if the process named in *folder*'s name is gone."""
    owner = folder.name.rpartition(_MARK)[2].split("-")  # pid, start, ...
    try:
        process = psutil.Process(int(owner[0]))
        return owner[:2] != _owner_tag(process).split("-")
    except psutil.NoSuchProcess:
        return True
    except (ValueError, psutil.Error):
        return False  # not one of ours, or cannot tell: leave it


class Staging:
    """A private folder in which a job builds what it will publish as *target*.

    Build ``result`` (a path not yet made), keep work files in ``work``, then
    ``commit()``. ``discard()`` removes whatever is left; call it in any case.
    """

    def __init__(self, target: Path):
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        self._remove_stale()
        # Unique also among the jobs of one process (on threads).
        tag = f"{_owner_tag(psutil.Process())}-{uuid.uuid4().hex[:8]}"
        self.folder = target.with_name(f".{target.name}{_MARK}{tag}")
        self.work = self.folder / "work"
        self.work.mkdir(parents=True)
        (self.folder / "out").mkdir()
        self.result = self.folder / "out" / target.name

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
