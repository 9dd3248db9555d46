"""A ready preload function: NetCDF files (plain, gzipped, zipped or tarred) to Zarr.

``preload_data(handle, data_id, *, cache_dir, ...)`` converts the resource named by
*data_id* (a local path or a ``file://`` URL) into Zarr stores in *cache_dir*::

    ExecutorPreloadHandle(paths, preload_data, cache_dir="cache")

or, from a shell, ``preload run preload.convert:preload_data PATH... --param
cache_dir=cache``. Needs the ``convert`` extra:
``pip install "preload-engine[convert]"``.
"""

import sys

try:
    import h5netcdf  # noqa: F401
    import xarray  # noqa: F401
    import zarr  # noqa: F401
except ImportError as exc:
    needs = " (Python 3.11 or newer)" if sys.version_info < (3, 11) else ""
    raise ImportError(
        f"preload.convert needs the 'convert' extra{needs}:"
        f' pip install "preload-engine[convert]" ({exc})'
    ) from exc

from .errors import ConvertError
from .preloader import preload_data

__all__ = ["ConvertError", "preload_data"]
