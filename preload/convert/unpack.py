"""Copying a resource and unpacking it, block by block, refusing unsafe members.

Each function reports how far it is through *advance(fraction)*, which is also
the job's cancellation point (it raises ``Cancelled``), once per block.
Only regular ``.nc`` files are taken out of an archive, and every member is
checked before it is: absolute paths, ``..``, links that point out of the
archive's folder, devices and pipes are refused and fail the job (a zip is
checked whole before anything is written; a tar.gz, read once, as it streams).

What a file unpacks to is bounded by a ``Budget``: the sizes its members
declare (all of a zip's up front, each tar member's from its header) must stay
within *max_unpacked_size* and within ``MAX_RATIO`` times the file's size (plus
``RATIO_SLACK``), and a member is stopped at the size it declares. A gzip file
declares its size only modulo 4 GiB, in a trailer that is checked only once
the whole file is read (a cut file has none): it is stopped at the bound.
"""

from __future__ import annotations

import gzip
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .errors import ConvertError
from .progress import share

BLOCK = 1 << 20
Advance = Callable[[float], None]

# The default bound on what one file may unpack to: far more than any NetCDF
# file or archive of them we expect to preload, yet a bound, so that a header
# that claims terabytes is refused rather than believed.
MAX_UNPACKED_SIZE = 64 << 30
# NetCDF data deflates 1-10 times (NetCDF-4 is often compressed inside: ~1
# time); past 100 times, 99% of it is one repeated pattern, as in a zip bomb.
# Deflate cannot pass ~1030 times, so a bound near that would catch little.
MAX_RATIO = 100
# What any file may unpack to whatever its ratio: small files are no danger.
RATIO_SLACK = 16 << 20
# Zip compressions read in bounded steps; zipfile inflates a bzip2 or lzma
# read whole (bzip2 packs 100 MiB of zeros in 113 bytes).
_ZIP_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


class Budget:
    """How much the file *label* of *size* bytes may unpack to: at most
    *max_unpacked_size* bytes and ``MAX_RATIO`` times its size (plus
    ``RATIO_SLACK``). ``declare()`` counts what its members declare."""

    def __init__(self, label: str, size: int, max_unpacked_size: int):
        self.label = label
        self.size = size
        self.max_unpacked_size = max_unpacked_size
        self.bound = min(max_unpacked_size, MAX_RATIO * size + RATIO_SLACK)
        self.declared = 0

    def declare(self, size: int, what: str) -> None:
        """Count *size* more bytes declared; ConvertError past the bound.
        *what* says who declares it: "its members declare"."""
        self.declared += size
        if self.declared > self.bound:
            raise self.exceeded(f"{what} {self.declared:,} bytes,")

    def exceeded(self, claim: str) -> ConvertError:
        """The error for an unpacked size past the bound, *claim* saying
        whose ("it unpacks to")."""
        if self.bound == self.max_unpacked_size:
            limit = f"max_unpacked_size ({self.max_unpacked_size:,} bytes)"
        else:
            limit = (
                f"{MAX_RATIO} times its size of {self.size:,} bytes"
                f" plus {RATIO_SLACK >> 20} MiB ({self.bound:,} bytes)"
            )
        return ConvertError(f"refused {self.label}: {claim} more than {limit}")


def is_netcdf_name(name: str) -> bool:
    return name.lower().endswith(".nc")


def copy_file(source: Path, target: Path, advance: Advance) -> None:
    """Copy *source* to *target*."""
    size = source.stat().st_size
    with source.open("rb") as src, target.open("wb") as dst:
        _pump(src, dst, advance, size)


def gunzip_size(path: Path) -> int:
    """About the size *path* unzips to, for progress: the gzip trailer's size
    (modulo 4 GiB, and unchecked until the whole file is read)."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size < 18:
            return size
        f.seek(-4, os.SEEK_END)
        (unzipped,) = struct.unpack("<I", f.read(4))
    return max(unzipped, size)


def gunzip(
    source: Path, target: Path, advance: Advance, label: str, budget: Budget
) -> None:
    """Unzip the gzip file *source* (named *label* in errors) to *target*,
    stopped at *budget*'s bound."""
    size = gunzip_size(source)

    def over() -> ConvertError:
        return budget.exceeded("it unpacks to")

    with (
        _reading(label, "gzip file"),
        gzip.open(source, "rb") as src,
        target.open("wb") as dst,
    ):
        _pump(src, dst, advance, size, budget.bound, over)


def zip_members(source: Path, label: str) -> list[zipfile.ZipInfo]:
    """The NetCDF members of zip file *source*, every member checked first."""
    with _reading(label, "zip file"), zipfile.ZipFile(source) as archive:
        infos = archive.infolist()
    for info in infos:
        mode = info.external_attr >> 16
        _check_name(info.filename, label)
        if stat.S_ISLNK(mode):
            raise ConvertError(f"refused link {info.filename!r} in {label}")
    members = [i for i in infos if not i.is_dir() and is_netcdf_name(i.filename)]
    for member in members:
        if member.compress_type not in _ZIP_COMPRESSIONS:
            raise ConvertError(
                f"refused member {member.filename!r} of {label}: compression"
                f" method {member.compress_type} (only stored and deflate)"
            )
    return members


def unzip(
    source: Path,
    members: list[zipfile.ZipInfo],
    folder: Path,
    advance: Advance,
    label: str,
) -> list[Path]:
    """Extract checked *members* of zip file *source* into *folder*, each
    stopped at the size it declares."""
    total = sum(m.file_size for m in members) or 1
    done = 0
    paths = []
    with _reading(label, "zip file"), zipfile.ZipFile(source) as archive:
        for member in members:
            path = folder.joinpath(*PurePosixPath(member.filename).parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, path.open("wb") as dst:
                part = share(advance, done, member.file_size, total)
                over = _over_declared(member.filename, member.file_size, label)
                _pump(src, dst, part, member.file_size, member.file_size, over)
            done += member.file_size
            paths.append(path)
    return paths


def untar(
    source: Path, folder: Path, advance: Advance, label: str, budget: Budget
) -> list[Path]:
    """Extract the NetCDF members of gzipped tar file *source* into *folder*,
    checking each member, and the sizes declared so far against *budget*,
    as the archive is read."""
    total = gunzip_size(source)
    paths = []
    with _reading(label, "tar.gz file"), tarfile.open(source, "r:gz") as archive:
        for member in archive:
            _check_tar_member(member, label)
            if not (member.isfile() and is_netcdf_name(member.name)):
                continue
            budget.declare(member.size, "its .nc members declare")
            path = folder.joinpath(*PurePosixPath(member.name).parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            src = archive.extractfile(member)
            assert src is not None
            with src, path.open("wb") as dst:
                part = share(advance, member.offset_data, member.size, total)
                over = _over_declared(member.name, member.size, label)
                _pump(src, dst, part, member.size, member.size, over)
            paths.append(path)
    return paths


def _check_name(name: str, label: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise ConvertError(f"refused member {name!r} of {label}: an absolute path")
    if ".." in path.parts:
        raise ConvertError(
            f"refused member {name!r} of {label}: it leads out of the folder"
        )
    return path


def _check_tar_member(member: tarfile.TarInfo, label: str) -> None:
    name = _check_name(member.name, label)
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        if member.issym():
            link = name.parent / link
        if link.is_absolute() or not _stays_inside(link):
            raise ConvertError(
                f"refused link {member.name!r} -> {member.linkname!r} in {label}:"
                " it points out of the folder"
            )
    elif not (member.isfile() or member.isdir()):
        raise ConvertError(
            f"refused member {member.name!r} of {label}: not a file or folder"
        )


def _stays_inside(path: PurePosixPath) -> bool:
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return False
    return True


def _over_declared(name: str, size: int, label: str) -> Callable[[], ConvertError]:
    return lambda: ConvertError(
        f"refused member {name!r} of {label}: it unpacks to more than the"
        f" {size:,} bytes it declares"
    )


def _pump(
    src: BinaryIO,
    dst: BinaryIO,
    advance: Advance,
    size: int,
    limit: int | None = None,
    over: Callable[[], ConvertError] | None = None,
) -> None:
    """Copy *src* to *dst*; with a *limit*, raise ``over()`` rather than write
    a byte past it."""
    done = 0
    advance(0.0)
    while block := src.read(BLOCK):
        done += len(block)
        if limit is not None and done > limit:
            assert over is not None
            raise over()
        dst.write(block)
        advance(done / size if size else 1.0)


@contextmanager
def _reading(label: str, what: str) -> Iterator[None]:
    """Errors of a corrupt archive as ConvertError naming the file."""
    try:
        yield
    except (
        EOFError,
        gzip.BadGzipFile,
        tarfile.TarError,
        zipfile.BadZipFile,
        zlib.error,
    ) as exc:
        raise ConvertError(f"{label} is not a valid {what}: {exc}") from exc
