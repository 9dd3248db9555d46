"""One NetCDF-4 file to one Zarr (format 3) store, variable by variable and
in slabs of whole chunks (about 8 MiB), never holding more than one slab.

The file is opened raw (``decode_cf=False``): values and attributes
(``_FillValue``, ``scale_factor``, time units, ``coordinates``) are copied as
they are, so the store opens to the same dataset as the file does.

xarray writes the store's metadata: a skeleton of every variable with its
dimensions shrunk to length 0 (no data), which is then resized to the real shape
and filled slab by slab with zarr. The root's ``zarr.json`` is held back
until the last chunk is written, so a store that is not complete does not open;
then the metadata is consolidated into it.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

from .errors import ConvertError

# Dimensions not named in ``chunks`` are chunked to about this many bytes a chunk,
# keeping trailing dimensions whole first.
CHUNK_BYTES = 4 << 20
# Data is read and written in slabs of whole chunks of about this many bytes: a
# read costs ~5 ms and a write ~2.5 ms however small (h5netcdf, zarr's event
# loop), and zarr writes the chunks of a slab concurrently. Progress and
# cancellation are checked between slabs.
SLAB_BYTES = 8 << 20
COMPRESSIONS = ("zstd", "blosc", "gzip", None)
_LEVELS = {"zstd": range(-131072, 23), "blosc": range(10), "gzip": range(10)}
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ROOT = "zarr.json"
_HELD_BACK = "zarr.json.incomplete"
_warnings_lock = threading.Lock()


@dataclass(frozen=True)
class Options:
    """How to write stores: chunk sizes by dimension name (-1: the whole
    dimension) and a compression (``None``: none) with an optional level."""

    chunks: Mapping[str, int]
    compression: str | None
    level: int | None

    @classmethod
    def checked(cls, chunks: Any, compression: Any, level: Any) -> Options:
        """The options, or TypeError/ValueError saying what is wrong."""
        if chunks is None:
            chunks = {}
        if not isinstance(chunks, Mapping):
            raise TypeError(f"chunks must be a dict of dimension: size, got {chunks!r}")
        for dim, size in chunks.items():
            if not isinstance(dim, str) or isinstance(size, bool):
                raise TypeError(
                    f"chunks must map dimension names to ints, got {chunks!r}"
                )
            if not isinstance(size, int) or not (size >= 1 or size == -1):
                raise ValueError(
                    f"chunk size of {dim!r} must be >= 1 or -1, got {size!r}"
                )
        if compression == "none":
            compression = None
        if compression not in COMPRESSIONS:
            raise ValueError(
                f"compression must be one of 'zstd', 'blosc', 'gzip' or None,"
                f" got {compression!r}"
            )
        if level is not None:
            if compression is None:
                raise ValueError("compression_level needs a compression")
            if isinstance(level, bool) or not isinstance(level, int):
                raise TypeError(f"compression_level must be an int, got {level!r}")
            allowed = _LEVELS[compression]
            if level not in allowed:
                raise ValueError(
                    f"{compression} compression_level must be in"
                    f" {allowed.start}..{allowed.stop - 1}, got {level}"
                )
        return cls(dict(chunks), compression, level)

    def compressors(self) -> list[Any] | None:
        if self.compression is None:
            return None
        level = {} if self.level is None else {"level": self.level}
        if self.compression == "blosc":
            clevel = {} if self.level is None else {"clevel": self.level}
            return [BloscCodec(cname="zstd", shuffle="shuffle", **clevel)]
        codec = ZstdCodec if self.compression == "zstd" else GzipCodec
        return [codec(**level)]

    def chunk_shape(self, var: xr.Variable) -> tuple[int, ...]:
        """Named dimensions as given; the others fill ``CHUNK_BYTES``, last first."""
        shape = [0] * var.ndim
        budget = CHUNK_BYTES / max(var.dtype.itemsize, 1)
        named = [i for i, dim in enumerate(var.dims) if dim in self.chunks]
        for i in named:
            size = self.chunks[var.dims[i]]
            shape[i] = max(var.shape[i] if size == -1 else min(size, var.shape[i]), 1)
            budget /= shape[i]
        for i in reversed(range(var.ndim)):
            if i not in named:
                shape[i] = int(min(max(budget, 1), max(var.shape[i], 1)))
                budget /= shape[i]
        return tuple(shape)


def open_raw(path: Path, label: str) -> xr.Dataset:
    """*path* opened lazily and undecoded; ConvertError naming *label* if it is
    not a NetCDF-4 file."""
    with path.open("rb") as f:
        head = f.read(8)
    if head[:3] == b"CDF":
        raise ConvertError(
            f"{label} is a NetCDF-3 (classic) file; only NetCDF-4 files are supported"
        )
    if head != _HDF5_SIGNATURE:
        raise ConvertError(f"{label} is not a NetCDF-4 file (no HDF5 signature)")
    try:
        return xr.open_dataset(
            path, engine="h5netcdf", decode_cf=False, chunks=None, cache=False
        )
    except Exception as exc:
        raise ConvertError(f"cannot read {label} as NetCDF-4: {exc}") from exc


def convert(
    source: xr.Dataset,
    store: Path,
    options: Options,
    advance: Callable[[float], None],
    say: Callable[[str], None],
    label: str,
) -> None:
    """Write the raw dataset *source* (from ``open_raw``) to a new Zarr store at
    *store*, reporting through *advance* (fraction of this file) and *say*."""
    variables = dict(source.variables)
    chunks = {name: options.chunk_shape(var) for name, var in variables.items()}
    _write_skeleton(source, store, options, chunks)
    os.rename(store / _ROOT, store / _HELD_BACK)
    total = sum(var.size * var.dtype.itemsize for var in variables.values()) or 1
    done = 0
    zarr_store = zarr.storage.LocalStore(store)
    arrays = [name for name, var in variables.items() if var.ndim]
    for number, name in enumerate(arrays, 1):
        var = variables[name]
        say(f"converting {label}: {name} ({number}/{len(arrays)})")
        array = zarr.open_array(zarr_store, path=name, mode="r+")
        array.resize(var.shape)
        slab = _slab_shape(var.shape, chunks[name], var.dtype.itemsize)
        for block in _blocks(var.shape, slab):
            try:
                data = var[block].values
            except Exception as exc:  # a damaged file: h5py's errors name no file
                raise ConvertError(f"cannot read {name!r} of {label}: {exc}") from exc
            array[block] = data
            done += data.size * var.dtype.itemsize
            advance(done / total)
    os.rename(store / _HELD_BACK, store / _ROOT)
    # xarray opens stores fastest with consolidated metadata (and warns without
    # it); zarr warns that it is not in the v3 spec yet. catch_warnings() swaps
    # the process's filters: one thread at a time (jobs on threads).
    with _warnings_lock, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
        zarr.consolidate_metadata(zarr_store)
    advance(1.0)


def _write_skeleton(
    source: xr.Dataset,
    store: Path,
    options: Options,
    chunks: Mapping[str, tuple[int, ...]],
) -> None:
    """The store's metadata, and the scalar variables, written by xarray."""
    skeleton = {}
    for name, var in source.variables.items():
        # Strings as variable-length strings: zarr's spec'd "string" type.
        dtype = h5py.string_dtype() if var.dtype.kind in "UO" else var.dtype
        if var.ndim == 0:
            data = np.array(var.values, dtype=dtype)
        else:
            data = np.empty((0,) * var.ndim, dtype=dtype)
        skeleton[name] = xr.Variable(var.dims, data, var.attrs)
    encoding = {
        name: {"chunks": chunks[name], "compressors": options.compressors()}
        for name, var in source.variables.items()
        if var.ndim
    }
    xr.Dataset(skeleton, attrs=source.attrs).to_zarr(
        store, mode="w-", zarr_format=3, consolidated=False, encoding=encoding
    )


def _slab_shape(
    shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int
) -> tuple[int, ...]:
    """Whole chunks grouped to about ``SLAB_BYTES``, trailing dimensions first."""
    budget = SLAB_BYTES / max(itemsize, 1)
    slab = list(chunks)
    for i in reversed(range(len(shape))):
        # Leave room for one chunk of each leading dimension.
        room = budget / math.prod(chunks[:i])
        slab[i] = min(max(shape[i], 1), chunks[i] * max(1, int(room // chunks[i])))
        budget /= slab[i]
    return tuple(slab)


def _blocks(shape: tuple[int, ...], chunks: tuple[int, ...]):
    """The index of each block of *chunks* of an array of *shape*, in order."""
    starts = [range(0, n, c) for n, c in zip(shape, chunks, strict=True)]
    for corner in itertools.product(*starts):
        yield tuple(
            slice(s, min(s + c, n))
            for s, c, n in zip(corner, chunks, shape, strict=True)
        )
