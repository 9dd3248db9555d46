"""What a data id names: a local file, its kind, and the output it preloads to."""

from __future__ import annotations

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
    """The resource *data_id* names; ConvertError for what we cannot read."""
    path = _local_path(data_id)
    name = path.name.lower()
    for suffix, kind in KINDS.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return Resource(path, kind, path.name[: -len(suffix)])
    raise ConvertError(
        f"unsupported resource {data_id!r}: expected a file ending in"
        f" {', '.join(KINDS)}"
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
