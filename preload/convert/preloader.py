"""``preload_data``: copy, unpack and convert one resource, publish it whole."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ..handle import PreloadHandle
from ..state import PreloadState
from .errors import ConvertError
from .netcdf_zarr import Options, convert, open_raw
from .progress import Cancelled, Progress, share
from .resource import Resource, resource_of
from .staging import Staging
from .unpack import (
    MAX_UNPACKED_SIZE,
    Budget,
    copy_file,
    gunzip,
    gunzip_size,
    untar,
    unzip,
    zip_members,
)

# What a byte costs in each phase, relative to copying it, so that progress
# moves about evenly in time. Measured with scripts/bench_convert.py on a local
# disk, where copying is cheapest (0.3-0.5 s/GB; unpacking 9-12, converting
# 12-15): from a slow mount the copy takes a larger share of the time than of
# the bar.
COST = {"copy": 1.0, "unpack": 25.0, "convert": 35.0}


def preload_data(
    handle: PreloadHandle,
    data_id: str,
    *,
    cache_dir: str | Path,
    chunks: Mapping[str, int] | None = None,
    compression: str | None = "zstd",
    compression_level: int | None = None,
    force: bool = False,
    max_unpacked_size: int = MAX_UNPACKED_SIZE,
) -> None:
    """Convert the NetCDF-4 file(s) of *data_id* to Zarr stores in *cache_dir*.

    *data_id* is a local path or ``file://`` URL of a ``.nc``, ``.nc.gz``,
    ``.zip`` or ``.tar.gz`` (``.tgz``) file. One NetCDF file becomes
    ``<cache_dir>/<name>.zarr``; an archive becomes a folder ``<cache_dir>/<name>``
    holding a ``.zarr`` store for each ``.nc`` member, at the member's path.

    *chunks* maps dimension names to chunk sizes (-1: the whole dimension);
    other dimensions get chunks of about 4 MiB. *compression* is ``"zstd"``,
    ``"blosc"`` (zstd with byte shuffle), ``"gzip"`` or ``None``.

    *max_unpacked_size* bounds what one file may unpack to, in bytes (default
    64 GiB); a file also may not unpack to more than 100 times its size plus
    16 MiB (a zip bomb). A file whose members declare more is refused before
    anything is unpacked; a member that unpacks to more than it declares, or a
    ``.nc.gz`` past the bound, is stopped there. Either fails the job, naming
    the file and the bound.

    The output name (the file's name without its suffix) must be a plain name:
    a name that starts with "." (such as ``..zip``), or holds a path separator
    or a control character, fails the job and leaves *cache_dir* untouched.

    What is there already is kept ("already preloaded") unless *force*.
    The output appears only when complete: a cancelled, failed or killed job
    leaves nothing that opens. Progress is weighted by size over the copy,
    unpack and convert phases; cancellation is checked between blocks (1 MiB)
    and between slabs of whole chunks (about 8 MiB).
    """
    options = Options.checked(chunks, compression, compression_level)
    _check_max_unpacked_size(max_unpacked_size)
    resource = resource_of(data_id)
    target = Path(cache_dir).expanduser() / resource.output_name
    if target.exists() and not force:
        handle.notify(
            PreloadState(data_id, progress=1.0, message=f"already preloaded: {target}")
        )
        return
    if not resource.path.is_file():
        raise FileNotFoundError(f"no such file: {resource.path}")
    staging = Staging(target)
    try:
        count = _build(handle, data_id, resource, staging, options, max_unpacked_size)
        published = staging.commit(replace=force)
    except Cancelled:
        return
    finally:
        staging.discard()
    if not published:
        message = f"already preloaded: {target}"
    elif resource.is_archive:
        message = f"preloaded {count} Zarr store{'s' * (count != 1)} to {target}"
    else:
        message = f"preloaded to {target}"
    handle.notify(PreloadState(data_id, progress=1.0, message=message))


def _check_params(
    *,
    chunks: Any = None,
    compression: Any = "zstd",
    compression_level: Any = None,
    max_unpacked_size: Any = MAX_UNPACKED_SIZE,
    **_: Any,
) -> None:
    Options.checked(chunks, compression, compression_level)
    _check_max_unpacked_size(max_unpacked_size)


def _check_max_unpacked_size(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_unpacked_size must be an int (bytes), got {value!r}")
    if value < 1:
        raise ValueError(f"max_unpacked_size must be >= 1, got {value}")


# ExecutorPreloadHandle (and `preload run`) check the options before any process
# starts, so that bad ones are one error, not one failed job per id.
preload_data.check_params = _check_params  # type: ignore[attr-defined]


def _build(
    handle: PreloadHandle,
    data_id: str,
    resource: Resource,
    staging: Staging,
    options: Options,
    max_unpacked_size: int,
) -> int:
    """Build the output in *staging*; the number of stores written."""
    source = resource.path
    label = source.name
    size = source.stat().st_size
    budget = Budget(label, size, max_unpacked_size)
    members = zip_members(source, label) if resource.kind == "zip" else []
    if resource.kind == "netcdf":
        unpacked = 0
    elif resource.kind == "zip":
        unpacked = sum(m.file_size for m in members)
        budget.declare(unpacked, "its .nc members declare")
    else:
        unpacked = gunzip_size(source)
    progress = Progress(
        handle,
        data_id,
        {
            "copy": size * COST["copy"],
            "unpack": unpacked * COST["unpack"],
            "convert": (unpacked or size) * COST["convert"],
        },
    )

    progress.phase("copy", f"copying {label} ({_megabytes(size)})")
    copy = staging.work / source.name
    copy_file(source, copy, progress.advance)

    # Each NetCDF file to convert: its path, its name in messages, its store.
    if resource.kind == "netcdf":
        files = [(copy, label, staging.result)]
    elif resource.kind == "gzip":
        progress.phase("unpack", f"unpacking {label}")
        unzipped = staging.work / f"{resource.stem}.nc"
        gunzip(copy, unzipped, progress.advance, label, budget)
        files = [(unzipped, label, staging.result)]
    else:
        progress.phase("unpack", f"unpacking {label}")
        folder = staging.work / "unpacked"
        folder.mkdir()
        if resource.kind == "zip":
            paths = unzip(copy, members, folder, progress.advance, label)
        else:
            paths = untar(copy, folder, progress.advance, label, budget)
        names = [PurePosixPath(p.relative_to(folder).as_posix()) for p in paths]
        files = [
            (path, f"{label}:{name}", staging.result / name.with_suffix(".zarr"))
            for path, name in zip(paths, names, strict=True)
        ]
        if not files:
            raise ConvertError(f"no NetCDF (.nc) files in {label}")
    if resource.kind != "netcdf":
        copy.unlink()

    progress.phase("convert", f"converting {label}")
    _check_chunk_dims(files, options, label)
    total = sum(path.stat().st_size for path, _, _ in files) or 1
    done = 0
    for path, file_label, store in files:
        store.parent.mkdir(parents=True, exist_ok=True)
        file_size = path.stat().st_size
        with open_raw(path, file_label) as dataset:
            convert(
                dataset,
                store,
                options,
                share(progress.advance, done, file_size, total),
                progress.say,
                file_label,
            )
        done += file_size
        path.unlink()
    return len(files)


def _check_chunk_dims(
    files: list[tuple[Path, str, Path]], options: Options, label: str
) -> None:
    """ConvertError if *chunks* names a dimension none of the files has; also
    fails a file that does not open before any is converted."""
    if not options.chunks:
        return
    dims: set[str] = set()
    for path, file_label, _ in files:
        with open_raw(path, file_label) as dataset:
            dims.update(str(d) for d in dataset.dims)
    unknown = sorted(set(options.chunks) - dims)
    if unknown:
        raise ConvertError(
            f"chunks names dimension{'s' * (len(unknown) > 1)} {', '.join(unknown)}"
            f" that {label} does not have (it has: {', '.join(sorted(dims))})"
        )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
