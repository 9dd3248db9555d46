"""Models of the preload handles of xcube's plugins, written from their patterns
(xcube-zenodo, xcube-clms, xcube-icosdp), with the network replaced by local
files. Importable, so that worker processes find these classes."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from preload import ExecutorPreloadHandle, PreloadState

CHUNK = 4096


def copy_in_chunks(handle, data_id: str, source: Path, target: Path) -> bool:
    """A download: copy *source* in chunks, reporting progress; False if cancelled."""
    size = source.stat().st_size
    done = 0
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(CHUNK):
            if handle.cancelled:
                return False
            dst.write(chunk)
            done += len(chunk)
            handle.notify(PreloadState(data_id, progress=done / size))
    return True


class ZenodoLike(ExecutorPreloadHandle):
    """xcube-zenodo's pattern: its own ``_data_ids`` dict (name -> URL) and
    attributes named like xcube's own, set before ``super().__init__()``;
    ``preload_data`` overridden, its download in a helper thread that calls
    ``self.notify`` and reads ``self.cancelled``; ``close()`` cleans up
    without ``super()``."""

    def __init__(self, cache: Path, *urls: str, **preload_params):
        self._cache = Path(cache)
        self._data_ids = {url.rsplit("/", 1)[-1]: url for url in urls}
        self._executor = "zenodo's own"
        self._states = "zenodo's own"
        self._download_folder = self._cache / "downloads"
        self._download_folder.mkdir(parents=True, exist_ok=True)
        super().__init__(data_ids=tuple(self._data_ids.keys()), **preload_params)

    def close(self) -> None:
        shutil.rmtree(self._download_folder, ignore_errors=True)

    def preload_data(self, data_id: str, **preload_params) -> None:
        source = Path(self._data_ids[data_id].removeprefix("file://"))
        download = self._download_folder / data_id
        if not in_a_thread(copy_in_chunks, self, data_id, source, download):
            return
        (self._cache / f"{data_id}.zarr").write_bytes(download.read_bytes())
        self.notify(PreloadState(data_id, message="Preloaded."))


def in_a_thread(function, *args):
    """*function(*args)* run in a helper thread; its result, or its exception raised."""
    outcome: list = []

    def run():
        try:
            outcome.append(function(*args))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return outcome[0]


class Downloader:
    """A handler object whose bound method is the preload function (as
    xcube-clms passes one); the download runs in a helper thread."""

    def __init__(self, sources: dict[str, Path], folder: Path):
        self.sources = sources
        self.folder = Path(folder)

    def preload(self, handle, data_id: str) -> None:
        target = self.folder / "downloads" / data_id
        source = self.sources[data_id]
        if in_a_thread(copy_in_chunks, handle, data_id, source, target):
            handle.notify(PreloadState(data_id, message="Downloaded."))


class ClmsLike(ExecutorPreloadHandle):
    """xcube-clms's pattern: a preload function given by the store, options
    popped from the params, ``close()`` without ``super()`` that reports a last
    message on each id, then removes a folder that must exist."""

    def __init__(self, data_id_maps: dict, folder: Path, preload_data, **params):
        self.data_id_maps = data_id_maps
        self._download_folder = Path(folder) / "downloads"
        super().__init__(
            data_ids=tuple(self.data_id_maps.keys()),
            blocking=params.pop("blocking", True),
            silent=params.pop("silent", False),
            preload_data=preload_data,
            **params,
        )

    def close(self) -> None:
        for data_id in self.data_id_maps:
            self.notify(PreloadState(data_id, message="Cleaning up Finished."))
        shutil.rmtree(self._download_folder)  # raises if it does not exist


def cancels_all(handle, data_id: str) -> None:
    """The job of 'quitter' cancels the whole preload; the others wait for it."""
    if data_id == "quitter":
        handle.cancel()
        return
    while not handle.cancelled:
        time.sleep(0.005)


def overshoots(handle, data_id: str) -> None:
    """Progress summed from parts, as xcube-zenodo does: 1.0000000000000002."""
    progress = 0.0
    for part in (0.34, 0.56, 0.1):
        progress += part
        handle.notify(PreloadState(data_id, progress=progress))
