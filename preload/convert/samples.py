"""Sample NetCDF-4 files to try the converter on, and to test and benchmark it.

    python -m preload.convert.samples DIR [--files N] [--megabytes M]

writes N files ``sample-<i>.nc`` of about M MB each into DIR and prints their paths.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

_LAT, _LON = 90, 180
_BYTES_PER_STEP = _LAT * _LON * (4 + 2)  # float32 temperature, int16 precipitation


def sample_dataset(megabytes: float = 1.0, seed: int = 0) -> xr.Dataset:
    """A gridded dataset of about *megabytes* MB, with what NetCDF files carry:
    CF time units, a scaled int16 variable with a fill value, NaNs, a 2-D
    coordinate, a string coordinate, a scalar variable and global attributes."""
    steps = max(1, round(megabytes * 1e6 / _BYTES_PER_STEP))
    rng = np.random.default_rng(seed)
    lat = np.linspace(-89.0, 89.0, _LAT)
    lon = np.linspace(-179.0, 179.0, _LON)
    field = 15 + 25 * np.cos(np.deg2rad(lat))[:, None] + 0 * lon
    temperature = (field + rng.normal(0, 2, (steps, _LAT, _LON))).astype("float32")
    temperature[:, :3, :] = np.nan  # no data near the pole
    precipitation = rng.gamma(0.5, 4.0, (steps, _LAT, _LON))
    precipitation[rng.random(precipitation.shape) < 0.01] = np.nan
    return xr.Dataset(
        {
            "temperature": (
                ("time", "lat", "lon"),
                temperature,
                {"units": "degC", "long_name": "air temperature"},
            ),
            "precipitation": (
                ("time", "lat", "lon"),
                precipitation,
                {"units": "mm/day", "long_name": "precipitation"},
            ),
            "land": (("lat", "lon"), rng.random((_LAT, _LON)) < 0.3),
            "crs": ((), np.int32(0), {"grid_mapping_name": "latitude_longitude"}),
        },
        coords={
            "time": pd.date_range("2020-01-01", periods=steps, freq="D"),
            "lat": ("lat", lat, {"units": "degrees_north"}),
            "lon": ("lon", lon, {"units": "degrees_east"}),
            "cell_area": (("lat", "lon"), np.cos(np.deg2rad(lat))[:, None] + 0 * lon),
            "zone": ("lat", np.array([f"zone {i // 10}" for i in range(_LAT)])),
        },
        attrs={"title": "preload sample", "Conventions": "CF-1.8", "seed": seed},
    )


def write_sample(path: str | Path, megabytes: float = 1.0, seed: int = 0) -> Path:
    """Write ``sample_dataset(megabytes, seed)`` as a NetCDF-4 file at *path*."""
    path = Path(path)
    sample_dataset(megabytes, seed).to_netcdf(
        path,
        engine="h5netcdf",
        encoding={
            "precipitation": {
                "dtype": "int16",
                "scale_factor": 0.01,
                "_FillValue": -32768,
            },
            "time": {"units": "days since 2020-01-01"},
        },
    )
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m preload.convert.samples", description=__doc__.splitlines()[0]
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--megabytes", type=float, default=20.0)
    args = parser.parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    for i in range(args.files):
        print(write_sample(args.folder / f"sample-{i}.nc", args.megabytes, seed=i))


if __name__ == "__main__":
    main()
