"""Preload slow data resources concurrently, in worker processes."""

import re
from importlib import metadata
from pathlib import Path

from .executor_handle import ExecutorPreloadHandle
from .handle import NullPreloadHandle, PreloadHandle
from .state import PreloadState, PreloadStatus


def _version() -> str:
    """pyproject.toml's version: read there in a source tree (the code that
    runs), else from the installed distribution's metadata."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        text = ""
    if re.search(r'^name\s*=\s*"preload-engine"', text, re.MULTILINE):
        found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
        if found:
            return found.group(1)
    try:
        return metadata.version("preload-engine")
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _version()

__all__ = [
    "ExecutorPreloadHandle",
    "NullPreloadHandle",
    "PreloadHandle",
    "PreloadState",
    "PreloadStatus",
    "__version__",
]
