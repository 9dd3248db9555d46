"""What a data id names: a local file, its kind, and the output it preloads to."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from .errors import ConvertError

# Suffix (lower case) -> kind.
KINDS = {
    ".nc.gz": "gzip",
    ".tar.gz": "tar",
    ".tgz": "tar",
    ".zip": "zip",
    ".nc": "netcdf",
}


@dataclass(frozen=True)
class Resource:
    """The file a data id names.

    *kind* is ``netcdf``, ``gzip`` (one gzipped NetCDF file), ``zip`` or ``tar``
    (a gzipped tar archive); *stem* is the file's name without its suffix.
    """

    path: Path
    kind: str
    stem: str

    @property
    def is_archive(self) -> bool:
        return self.kind in ("zip", "tar")

    @property
    def output_name(self) -> str:
        """The name of what it preloads to: ``<stem>.zarr`` for one NetCDF file,
        a folder ``<stem>`` of Zarr stores for an archive."""
        return self.stem if self.is_archive else f"{self.stem}.zarr"


def resource_of(data_id: str) -> Resource:
    """The resource *data_id* names; ConvertError for what we cannot read or
    for a name that does not make a plain output name (see ``_check_stem``)."""
    path = _local_path(data_id)
    name = path.name.lower()
    for suffix, kind in KINDS.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            stem = path.name[: -len(suffix)]
            _check_stem(stem, data_id)
            return Resource(path, kind, stem)
    raise ConvertError(
        f"unsupported resource {data_id!r}: expected a file ending in"
        f" {', '.join(KINDS)}"
    )


def _check_stem(stem: str, data_id: str) -> None:
    """ConvertError naming *data_id* unless *stem* makes a plain name of an
    entry of the cache folder.

    Refused: a stem that starts with "." (".", "..", "..." would name the cache
    folder or its parent, and hidden names are kept for unfinished output),
    that holds a path separator or a control character, also once
    NFKC-normalised (two fullwidth full stops are ".." on a file system that
    normalises names)."""
    plain = unicodedata.normalize("NFKC", stem)
    if plain.startswith("."):
        reason = "it starts with '.'"
    elif "/" in plain or "\\" in plain:
        reason = "it holds a path separator"
    elif any(unicodedata.category(c) == "Cc" for c in plain):
        reason = "it holds a control character"
    else:
        return
    raise ConvertError(
        f"refused {data_id!r}: its output name {stem!r} is not a plain name"
        f" inside cache_dir ({reason})"
    )


def _local_path(data_id: str) -> Path:
    if "://" not in data_id:
        return Path(data_id).expanduser()
    parts = urlsplit(data_id)
    if parts.scheme.lower() != "file":
        raise ConvertError(
            f"unsupported resource {data_id!r}: only local paths and file:// URLs"
        )
    if parts.netloc not in ("", "localhost"):
        raise ConvertError(
            f"unsupported resource {data_id!r}: file:// URLs must name a local file"
            f" (host {parts.netloc!r})"
        )
    return Path(url2pathname(parts.path))
