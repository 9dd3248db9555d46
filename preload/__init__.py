"""Preload slow data resources concurrently, in worker processes."""

from .executor_handle import ExecutorPreloadHandle
from .handle import NullPreloadHandle, PreloadHandle
from .state import PreloadState, PreloadStatus

__all__ = [
    "ExecutorPreloadHandle",
    "NullPreloadHandle",
    "PreloadHandle",
    "PreloadState",
    "PreloadStatus",
]
