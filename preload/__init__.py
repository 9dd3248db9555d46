"""Preload slow data resources concurrently, in worker processes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .handle import NullPreloadHandle, PreloadHandle
from .state import PreloadState, PreloadStatus

if TYPE_CHECKING:
    from .executor_handle import ExecutorPreloadHandle


def __getattr__(name: str) -> Any:
    # Imported on first use: a worker process (and the forkserver that
    # starts workers) needs only the worker side, ~6x quicker to import.
    if name == "ExecutorPreloadHandle":
        from .executor_handle import ExecutorPreloadHandle

        return ExecutorPreloadHandle
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _version() -> str:
    """pyproject.toml's version: read there in a source tree (the code that
    runs), else from the installed distribution's metadata."""
    import re
    from pathlib import Path

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        text = ""
    if re.search(r'^name\s*=\s*"preload-engine"', text, re.MULTILINE):
        found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
        if found:
            return found.group(1)
    from importlib import metadata

    try:
        return metadata.version("preload-engine")
    except metadata.PackageNotFoundError:
        return "0+unknown"


__all__ = [
    "ExecutorPreloadHandle",
    "NullPreloadHandle",
    "PreloadHandle",
    "PreloadState",
    "PreloadStatus",
    "__version__",
]
