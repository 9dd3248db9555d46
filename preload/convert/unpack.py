"""Copying a resource and unpacking it, block by block, refusing unsafe members.

Each function reports how far it is through *advance(fraction)*, which is also
the job's cancellation point (it raises ``Cancelled``), once per block.
Only regular ``.nc`` files are taken out of an archive, and every member is
checked before it is: absolute paths, ``..``, links that point out of the
archive's folder, devices and pipes are refused and fail the job (a zip is
checked whole before anything is written; a tar.gz, read once, as it streams).
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


def is_netcdf_name(name: str) -> bool:
    return name.lower().endswith(".nc")


def copy_file(source: Path, target: Path, advance: Advance) -> None:
    """Copy *source* to *target*."""
    size = source.stat().st_size
    with source.open("rb") as src, target.open("wb") as dst:
        _pump(src, dst, advance, size)


def gunzip_size(path: Path) -> int:
    """The size *path* unzips to, from the gzip trailer (modulo 4 GiB)."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size < 18:
            return size
        f.seek(-4, os.SEEK_END)
        (unzipped,) = struct.unpack("<I", f.read(4))
    return max(unzipped, size)


def gunzip(source: Path, target: Path, advance: Advance, label: str) -> None:
    """Unzip the gzip file *source* (named *label* in errors) to *target*."""
    size = gunzip_size(source)
    with (
        _reading(label, "gzip file"),
        gzip.open(source, "rb") as src,
        target.open("wb") as dst,
    ):
        _pump(src, dst, advance, size)


def zip_members(source: Path, label: str) -> list[zipfile.ZipInfo]:
    """The NetCDF members of zip file *source*, every member checked first."""
    with _reading(label, "zip file"), zipfile.ZipFile(source) as archive:
        infos = archive.infolist()
    for info in infos:
        mode = info.external_attr >> 16
        _check_name(info.filename, label)
        if stat.S_ISLNK(mode):
            raise ConvertError(f"refused link {info.filename!r} in {label}")
    return [i for i in infos if not i.is_dir() and is_netcdf_name(i.filename)]


def unzip(
    source: Path,
    members: list[zipfile.ZipInfo],
    folder: Path,
    advance: Advance,
    label: str,
) -> list[Path]:
    """Extract checked *members* of zip file *source* into *folder*."""
    total = sum(m.file_size for m in members) or 1
    done = 0
    paths = []
    with _reading(label, "zip file"), zipfile.ZipFile(source) as archive:
        for member in members:
            path = folder.joinpath(*PurePosixPath(member.filename).parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, path.open("wb") as dst:
                part = share(advance, done, member.file_size, total)
                _pump(src, dst, part, member.file_size)
            done += member.file_size
            paths.append(path)
    return paths


def untar(source: Path, folder: Path, advance: Advance, label: str) -> list[Path]:
    """Extract the NetCDF members of gzipped tar file *source* into *folder*,
    checking each member as the archive is read."""
    total = gunzip_size(source)
    paths = []
    with _reading(label, "tar.gz file"), tarfile.open(source, "r:gz") as archive:
        for member in archive:
            _check_tar_member(member, label)
            if not (member.isfile() and is_netcdf_name(member.name)):
                continue
            path = folder.joinpath(*PurePosixPath(member.name).parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            src = archive.extractfile(member)
            assert src is not None
            with src, path.open("wb") as dst:
                part = share(advance, member.offset_data, member.size, total)
                _pump(src, dst, part, member.size)
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


def _pump(src: BinaryIO, dst: BinaryIO, advance: Advance, size: int) -> None:
    done = 0
    advance(0.0)
    while block := src.read(BLOCK):
        dst.write(block)
        done += len(block)
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
