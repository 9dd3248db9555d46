"""preload.convert: NetCDF files (plain, gzipped, zipped, tarred) to Zarr stores,
converted in real worker processes and compared with their sources."""

from __future__ import annotations

import gzip
import io
import json
import random
import re
import shutil
import struct
import tarfile
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip(
    "preload.convert",
    reason="needs the convert extra (Python 3.11+)",
    exc_type=ImportError,  # what preload.convert raises without its libraries
)

import xarray as xr

from preload import ExecutorPreloadHandle, NullPreloadHandle, PreloadStatus
from preload.convert import ConvertError, preload_data
from preload.convert.samples import write_sample

from conftest import wait_until
from tests_support import preload

# Small files: 3 time steps of 90 x 180 cells.
MB = 0.3


def run(ids, function=preload_data, **params) -> ExecutorPreloadHandle:
    return ExecutorPreloadHandle(ids, function, silent=True, **params)


# Stores are opened with chunks=None: without dask, whose default thread pool
# (started on first use, kept until exit) would count as threads left behind.


def assert_same(nc_path: Path, store: Path) -> None:
    """The Zarr store opens to the same dataset as the NetCDF file."""
    with (
        xr.open_dataset(nc_path, engine="h5netcdf") as expected,
        xr.open_zarr(store, consolidated=True, chunks=None) as actual,
    ):
        assert actual.identical(expected)


def opens(store: Path) -> bool:
    try:
        xr.open_zarr(store, chunks=None).close()
    except Exception:
        return False
    return True


def tar_gz(path: Path, members: dict[str, Path | bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            if isinstance(content, Path):
                archive.add(content, arcname=name)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    return path


@pytest.fixture
def sources(tmp_path):
    """One resource of each kind, and the NetCDF files each holds."""
    src = tmp_path / "src"
    src.mkdir()
    nc = {i: write_sample(src / f"f{i}.nc", MB, seed=i) for i in range(6)}
    plain = nc[0]
    gzipped = src / "g.nc.gz"
    with nc[1].open("rb") as f, gzip.open(gzipped, "wb") as g:
        shutil.copyfileobj(f, g)
    zipped = src / "bundle.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.write(nc[2], "a.nc")
        archive.write(nc[3], "sub/b.nc")
        archive.writestr("README.txt", "not NetCDF")
    tarred = src / "bundle2.tar.gz"
    with tarfile.open(tarred, "w:gz") as archive:
        archive.add(nc[4], arcname="c.nc")
        archive.add(nc[5], arcname="deeper/d.nc")
        link = tarfile.TarInfo("deeper/link.nc")
        link.type = tarfile.SYMTYPE
        link.linkname = "../c.nc"  # a link inside the archive's folder: allowed
        archive.addfile(link)
    return {
        "plain": (str(plain), {"f0.zarr": nc[0]}),
        "gzip": (gzipped.as_uri(), {"g.zarr": nc[1]}),
        "zip": (str(zipped), {"bundle/a.zarr": nc[2], "bundle/sub/b.zarr": nc[3]}),
        "tar": (str(tarred), {"bundle2/c.zarr": nc[4], "bundle2/deeper/d.zarr": nc[5]}),
    }


def test_every_kind_converts_to_identical_stores(sources, tmp_path):
    cache = tmp_path / "cache"
    ids = [data_id for data_id, _ in sources.values()]
    handle = run(ids, cache_dir=str(cache), chunks={"time": 1}, max_workers=2)
    for data_id, stores in sources.values():
        state = handle.get_state(data_id)
        assert state.status == PreloadStatus.completed, state.exception
        assert state.progress == 1.0
        assert state.message.startswith("preloaded")
        for name, nc_path in stores.items():
            assert_same(nc_path, cache / name)
    store = cache / "f0.zarr"
    with xr.open_zarr(store, chunks=None) as dataset:
        encoding = dataset.temperature.encoding
        assert encoding["chunks"] == (1, 90, 180)
        assert type(encoding["compressors"][0]).__name__ == "ZstdCodec"
    # Only the outputs are left: no copies, no unpacked files, no staging folders.
    assert sorted(p.name for p in cache.iterdir()) == [
        "bundle",
        "bundle2",
        "f0.zarr",
        "g.zarr",
    ]
    assert {p.name for p in (cache / "bundle2").rglob("*.zarr")} == {"c.zarr", "d.zarr"}


def test_threads_convert_the_same(sources, tmp_path):
    data_id, stores = sources["zip"]
    # Two ids for one file: one job publishes it, the other finds it there.
    same = Path(data_id).as_uri()
    with ThreadPoolExecutor(2) as executor:
        handle = run([data_id, same], executor=executor, cache_dir=str(tmp_path / "c"))
    messages = sorted(
        handle.get_state(i).message.split(":")[0] for i in (data_id, same)
    )
    assert messages == [
        "already preloaded",
        f"preloaded 2 Zarr stores to {tmp_path}/c/bundle",
    ]
    for name, nc_path in stores.items():
        assert_same(nc_path, tmp_path / "c" / name)
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["bundle"]


def test_already_preloaded_unless_forced(sources, tmp_path):
    data_id, stores = sources["plain"]
    cache = tmp_path / "cache"
    run([data_id], cache_dir=str(cache))
    store = cache / "f0.zarr"
    first = (store / "zarr.json").stat().st_mtime_ns

    again = run([data_id], cache_dir=str(cache))
    state = again.get_state(data_id)
    assert state.status == PreloadStatus.completed
    assert state.message == f"already preloaded: {store}"
    assert (store / "zarr.json").stat().st_mtime_ns == first

    options = {"chunks": {"lat": 30}, "compression": None}
    forced = run([data_id], cache_dir=str(cache), force=True, **options)
    assert forced.get_state(data_id).message == f"preloaded to {store}"
    assert_same(stores["f0.zarr"], store)
    with xr.open_zarr(store, chunks=None) as dataset:
        assert dataset.temperature.encoding["chunks"][1] == 30
        assert dataset.temperature.encoding["compressors"] == ()
    assert [p.name for p in cache.iterdir()] == ["f0.zarr"]


class Recording(NullPreloadHandle):
    def __init__(self):
        self.states = []

    def notify(self, state):
        self.states.append(state)


def test_progress_moves_through_weighted_phases(sources, tmp_path):
    handle = Recording()
    data_id = sources["tar"][0]
    preload_data(handle, data_id, cache_dir=tmp_path, chunks={"time": 1})
    progress = [s.progress for s in handle.states]
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    messages = [(s.message, s.progress) for s in handle.states if s.message]
    phases = [m.split()[0] for m, _ in messages]
    assert phases[:3] == ["copying", "unpacking", "converting"]
    assert phases[-1] == "preloaded"
    assert re.fullmatch(r"copying bundle2\.tar\.gz \(0\.\d MB\)", messages[0][0])
    # Each variable of each member file is named as it is converted.
    variables = [m for m, _ in messages if ": " in m]
    assert variables[0] == "converting bundle2.tar.gz:c.nc: temperature (1/8)"
    second_file = "converting bundle2.tar.gz:deeper/d.nc: temperature (1/8)"
    assert second_file in variables
    # Weighted by size and cost per byte: copying is cheap, unpacking a byte
    # costs less than converting it.
    starts = {m.split()[0]: p for m, p in reversed(messages)}
    assert 0 < starts["unpacking"] < 0.05
    assert 0.3 < starts["converting"] < 0.5


def test_cancel_during_conversion_leaves_no_store(sources, tmp_path):
    from convert_jobs import convert_until_cancelled

    data_id = sources["plain"][0]
    cache = tmp_path / "cache"
    handle = ExecutorPreloadHandle(
        [data_id],
        convert_until_cancelled,
        blocking=False,
        silent=True,
        cache_dir=str(cache),
        chunks={"time": 1},
    )
    with handle:
        assert wait_until(
            lambda: "(2/" in (handle.get_state(data_id).message or ""), timeout=30
        )
        handle.cancel()
        assert handle.wait(30)
    assert handle.get_state(data_id).status == PreloadStatus.cancelled
    assert list(cache.iterdir()) == []


def test_killed_worker_leaves_no_store_that_opens(sources, tmp_path):
    from convert_jobs import convert_then_die

    data_id, stores = sources["plain"]
    cache = tmp_path / "cache"
    handle = run([data_id], convert_then_die, cache_dir=str(cache))
    state = handle.get_state(data_id)
    assert state.status == PreloadStatus.failed
    assert "SIGKILL" in str(state.exception)
    assert not (cache / "f0.zarr").exists()
    (partial,) = cache.iterdir()
    assert partial.name.startswith(".f0.zarr.partial-")
    (store,) = partial.rglob("f0.zarr")  # half-written
    assert not opens(store)

    # The next run for the same target removes what the dead worker left.
    run([data_id], cache_dir=str(cache))
    assert [p.name for p in cache.iterdir()] == ["f0.zarr"]
    assert_same(stores["f0.zarr"], cache / "f0.zarr")


def test_corrupt_and_unsupported_files_fail_naming_them(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    files = {
        "junk.nc": b"this is not NetCDF" * 10,
        "classic.nc": b"CDF\x01" + bytes(60),
        "cut.nc.gz": gzip.compress(random.Random(0).randbytes(10_000))[:100],
        "broken.zip": b"PK\x03\x04 not really a zip",
        "broken.tar.gz": gzip.compress(b"no tar here" * 100),
        "table.csv": b"a,b\n1,2\n",
    }
    for name, content in files.items():
        (src / name).write_bytes(content)
    sample = write_sample(tmp_path / "sample.nc", MB).read_bytes()
    (src / "truncated.nc").write_bytes(sample[: len(sample) * 2 // 3])
    empty_zip = src / "empty.zip"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("notes.txt", "no NetCDF in here")
    ids = [str(src / name) for name in [*files, "truncated.nc", "empty.zip", "gone.nc"]]
    cache = tmp_path / "cache"
    handle = run(ids, cache_dir=str(cache))
    errors = {Path(i).name: handle.get_state(i).exception for i in ids}
    assert all(handle.get_state(i).status == PreloadStatus.failed for i in ids)
    expected = {
        "junk.nc": "junk.nc is not a NetCDF-4 file",
        "classic.nc": "classic.nc is a NetCDF-3 (classic) file",
        "cut.nc.gz": "cut.nc.gz is not a valid gzip file",
        "broken.zip": "broken.zip is not a valid zip file",
        "broken.tar.gz": "broken.tar.gz is not a valid tar.gz file",
        "table.csv": "unsupported resource",
        "truncated.nc": "truncated.nc",
        "empty.zip": "no NetCDF (.nc) files in empty.zip",
        "gone.nc": f"no such file: {src / 'gone.nc'}",
    }
    for name, text in expected.items():
        assert text in str(errors[name]), (name, errors[name])
    for name in expected:
        if name != "gone.nc":
            assert isinstance(errors[name], ConvertError), name
    assert list(cache.iterdir()) == []


def test_unsafe_archive_members_are_refused(sources, tmp_path):
    src = tmp_path / "evil"
    src.mkdir()
    nc = Path(sources["plain"][1]["f0.zarr"])
    up_zip = src / "up.zip"
    with zipfile.ZipFile(up_zip, "w") as archive:
        archive.write(nc, "good.nc")
        archive.write(nc, "../escaped.nc")
    up_tar = tar_gz(src / "up.tar.gz", {"good.nc": nc, "x/../../escaped.nc": nc})
    absolute = tar_gz(src / "abs.tar.gz", {"/tmp/escaped.nc": b"data"})
    link = src / "link.tar.gz"
    with tarfile.open(link, "w:gz") as archive:
        info = tarfile.TarInfo("data/passwd.nc")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../../etc/passwd"
        archive.addfile(info)
    cache = tmp_path / "cache"
    ids = [str(p) for p in (up_zip, up_tar, absolute, link)]
    handle = run(ids, cache_dir=str(cache))
    messages = [str(handle.get_state(i).exception) for i in ids]
    assert messages == [
        "refused member '../escaped.nc' of up.zip: it leads out of the folder",
        "refused member 'x/../../escaped.nc' of up.tar.gz: it leads out of the folder",
        "refused member '/tmp/escaped.nc' of abs.tar.gz: an absolute path",
        "refused link 'data/passwd.nc' -> '../../../etc/passwd' in link.tar.gz:"
        " it points out of the folder",
    ]
    assert list(cache.iterdir()) == []
    assert not list(tmp_path.rglob("escaped.nc"))


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under *folder* and the content of each file."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None
        for p in sorted(folder.rglob("*"))
    }


def test_output_names_outside_their_folder_are_refused(sources, tmp_path):
    # A cache holding another store, inside a folder holding more.
    cache = tmp_path / "work" / "cache"
    (cache / "keep.zarr").mkdir(parents=True)
    (cache / "keep.zarr" / "zarr.json").write_text("{}")
    (tmp_path / "work" / "other.txt").write_text("beside the cache")
    src = tmp_path / "named"
    src.mkdir()
    zipped = Path(sources["zip"][0]).read_bytes()
    plain = Path(sources["plain"][0]).read_bytes()
    names = {
        "..zip": zipped,  # stem ".": the cache itself
        "...zip": zipped,  # stem "..": the folder holding the cache
        "..tar.gz": Path(sources["tar"][0]).read_bytes(),
        "...nc": plain,
        "..nc.gz": gzip.compress(plain),
        ".hidden.nc": plain,  # hidden names are kept for staging folders
        "\uff0e\uff0e.zip": zipped,  # fullwidth dots: ".." once NFKC-normalised
        "a\nb.nc": plain,
        ".zip": zipped,  # no stem at all
    }
    for name, content in names.items():
        (src / name).write_bytes(content)
    ids = [str(src / name) for name in names]
    ids += [
        f"{src}/..zip/",  # a trailing slash
        f"{src.as_uri()}/%2E%2E.zip",  # quoted dots in a URL
        f"{src.as_uri()}/sub%2F..zip",  # a quoted slash in a URL
    ]
    before = tree(tmp_path / "work")
    handle = run(ids, cache_dir=str(cache), force=True, max_workers=2)
    for data_id in ids:
        state = handle.get_state(data_id)
        assert state.status == PreloadStatus.failed, data_id
        assert isinstance(state.exception, ConvertError), data_id
        assert repr(data_id) in str(state.exception), data_id
    message = str(handle.get_state(ids[0]).exception)
    assert message == (
        f"refused {ids[0]!r}: its output name '.' is not a plain name inside"
        " cache_dir (it starts with '.')"
    )
    assert "(it holds a control character)" in str(handle.get_state(ids[7]).exception)
    assert "unsupported resource" in str(handle.get_state(ids[8]).exception)
    assert tree(tmp_path / "work") == before


ZEROS = 32 << 20  # compresses to ~32 KB: past 100 times that plus 16 MiB


def zip_of(path: Path, name: str, content: bytes, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", method) as archive:
        archive.writestr(name, content)
    return path


def patch_zip_size(path: Path, size: int, crc: int | None = None) -> None:
    """Make the zip *path* (one member) declare *size* unpacked bytes (and the
    checksum *crc*, if given)."""
    data = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        header = data.index(signature) + offset  # crc, compressed, unpacked size
        struct.pack_into("<I", data, header + 8, size)
        if crc is not None:
            struct.pack_into("<I", data, header, crc)
    path.write_bytes(bytes(data))


def test_archives_past_the_unpack_bounds_are_refused(sources, tmp_path):
    src = tmp_path / "bombs"
    src.mkdir()
    zeros = bytes(ZEROS)
    bomb_zip = zip_of(src / "bomb.zip", "zeros.nc", zeros)
    bomb_tar = tar_gz(src / "bomb.tar.gz", {"a.nc": b"x", "zeros.nc": zeros})
    bomb_gz = src / "bomb.nc.gz"
    bomb_gz.write_bytes(gzip.compress(zeros))
    bz2_zip = zip_of(src / "bz2.zip", "small.nc", b"x" * 1000, zipfile.ZIP_BZIP2)
    liar = zip_of(src / "liar.zip", "big.nc", zeros)
    patch_zip_size(liar, 1000)
    ids = [str(p) for p in (bomb_zip, bomb_tar, bomb_gz, bz2_zip, liar)]
    cache = tmp_path / "cache"
    start = time.monotonic()
    handle = run(ids, cache_dir=str(cache), max_workers=2)
    elapsed = time.monotonic() - start
    # A real archive, past a small max_unpacked_size.
    honest = sources["zip"][0]
    small = run([honest], cache_dir=str(cache), max_unpacked_size=100_000)
    ids.append(honest)
    errors = [handle.get_state(i).exception for i in ids[:-1]]
    errors.append(small.get_state(honest).exception)
    assert all(isinstance(e, ConvertError) for e in errors), errors
    declared = sum(i.file_size for i in zipfile.ZipFile(honest).infolist()[:2])

    def ratio_bound(path: Path) -> str:
        size = path.stat().st_size
        return (
            f"more than 100 times its size of {size:,} bytes plus 16 MiB"
            f" ({100 * size + (16 << 20):,} bytes)"
        )

    # Refused on what they declare, before anything is unpacked.
    assert str(errors[0]) == (
        f"refused bomb.zip: its .nc members declare {ZEROS:,} bytes,"
        f" {ratio_bound(bomb_zip)}"
    )
    assert str(errors[1]) == (
        f"refused bomb.tar.gz: its .nc members declare {ZEROS + 1:,} bytes,"
        f" {ratio_bound(bomb_tar)}"
    )
    # A gzip file's declared size is not to be trusted: stopped at the bound.
    assert str(errors[2]) == f"refused bomb.nc.gz: it unpacks to {ratio_bound(bomb_gz)}"
    assert str(errors[3]) == (
        "refused member 'small.nc' of bz2.zip: compression method 12"
        " (only stored and deflate)"
    )
    # A member whose header declares less than it holds stops at what it declares.
    assert str(errors[4]).startswith("liar.zip is not a valid zip file: Bad CRC-32")
    assert elapsed < 10  # a process pool, and 32 MiB of zeros unpacked to nothing
    assert str(errors[5]) == (
        f"refused bundle.zip: its .nc members declare {declared:,} bytes,"
        " more than max_unpacked_size (100,000 bytes)"
    )
    assert list(cache.iterdir()) == []


def test_a_member_stops_at_its_declared_size(tmp_path):
    from preload.convert.unpack import unzip, zip_members

    # Even with the checksum of what it declares, 1000 bytes are all it gives.
    liar = zip_of(tmp_path / "liar.zip", "big.nc", bytes(ZEROS))
    patch_zip_size(liar, 1000, crc=zlib.crc32(bytes(1000)))
    members = zip_members(liar, "liar.zip")
    folder = tmp_path / "out"
    folder.mkdir()
    assert unzip(liar, members, folder, lambda _: None, "liar.zip") == [
        folder / "big.nc"
    ]
    assert (folder / "big.nc").stat().st_size == 1000


def test_a_gzip_file_that_lies_in_its_trailer_stops_at_the_bound(tmp_path):
    from preload.convert.unpack import Budget, gunzip

    liar = tmp_path / "liar.nc.gz"
    packed = bytearray(gzip.compress(bytes(ZEROS)))
    struct.pack_into("<I", packed, len(packed) - 4, 1000)  # the size, mod 4 GiB
    liar.write_bytes(bytes(packed))
    target = tmp_path / "liar.nc"
    budget = Budget("liar.nc.gz", liar.stat().st_size, max_unpacked_size=4 << 20)
    start = time.monotonic()
    with pytest.raises(ConvertError) as error:
        gunzip(liar, target, lambda _: None, "liar.nc.gz", budget)
    assert time.monotonic() - start < 1
    assert str(error.value) == (
        "refused liar.nc.gz: it unpacks to more than max_unpacked_size"
        " (4,194,304 bytes)"
    )
    assert target.stat().st_size == 4 << 20

    # The same through preload_data: the ratio bound, and nothing left.
    cache = tmp_path / "cache"
    handle = run([str(liar)], cache_dir=str(cache))
    state = handle.get_state(str(liar))
    assert state.status == PreloadStatus.failed
    size = liar.stat().st_size
    assert str(state.exception) == (
        f"refused liar.nc.gz: it unpacks to more than 100 times its size of"
        f" {size:,} bytes plus 16 MiB ({100 * size + (16 << 20):,} bytes)"
    )
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"chunks": {"time": 0}}, "chunk size of 'time' must be >= 1 or -1, got 0"),
        ({"chunks": {"tiem": 2}}, "chunks names dimension tiem that f0.nc does not"),
        ({"compression": "lz4"}, "compression must be one of"),
        ({"compression_level": 30}, "zstd compression_level must be in"),
        ({"max_unpacked_size": 0}, "max_unpacked_size must be >= 1, got 0"),
        ({"max_unpacked_size": "1GB"}, "max_unpacked_size must be an int"),
    ],
)
def test_bad_options_fail_clearly(sources, tmp_path, params, error):
    handle = Recording()
    with pytest.raises((TypeError, ValueError, ConvertError), match=error):
        preload_data(handle, sources["plain"][0], cache_dir=tmp_path / "c", **params)
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())


def test_bad_parameters_are_an_error_before_any_process_starts(sources, tmp_path):
    data_id = sources["plain"][0]
    # Python 3.12+ says "keyword-only argument".
    with pytest.raises(TypeError, match=r"missing a required .*argument: 'cache_dir'"):
        run([data_id])
    with pytest.raises(ValueError, match="compression must be one of"):
        run([data_id], cache_dir=str(tmp_path), compression="lz4")
    with pytest.raises(TypeError, match="max_unpacked_size must be an int"):
        run([data_id], cache_dir=str(tmp_path), max_unpacked_size=1.5e9)
    assert list(tmp_path.iterdir()) == [Path(data_id).parent]


def test_preload_run_command(sources, tmp_path):
    good = sources["gzip"][0]
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"junk")
    cache = tmp_path / "cache"
    out = tmp_path / "states.jsonl"
    args = ["run", "preload.convert:preload_data", good, str(bad)]
    params = ["--param", f"cache_dir={cache}", "--param", 'chunks={"time": 1}']
    result = preload(*args, *params, "--json", str(out), timeout=120)
    assert result.returncode == 1, result.stderr
    states = {s["data_id"]: s for s in map(json.loads, out.read_text().splitlines())}
    assert states[good]["status"] == "completed"
    assert states[str(bad)]["status"] == "failed"
    assert "bad.nc is not a NetCDF-4 file" in states[str(bad)]["exception"]
    assert_same(sources["gzip"][1]["g.zarr"], cache / "g.zarr")

    for extra, error in [
        ([], r"missing a required .*argument: 'cache_dir'"),
        (["--param", "cache_dir=c", "--param", "chunks=8"], "chunks must be a dict"),
    ]:
        usage = preload(*args, *extra)
        assert usage.returncode == 2
        assert re.search(error, usage.stderr), usage.stderr


@pytest.mark.parametrize(
    ("shape", "dtype", "chunks", "expected"),
    [
        # 4 MiB chunks by default, trailing dimensions whole first.
        ((100, 500, 500), "float32", {}, (4, 500, 500)),
        ((10, 2000, 2000), "float64", {}, (1, 262, 2000)),
        ((50,), "int16", {}, (50,)),
        # Named dimensions as given (-1: whole), the others fill the rest.
        ((100, 500, 500), "float32", {"time": 1, "lon": -1}, (1, 500, 500)),
        ((100, 500, 500), "float32", {"lat": 100}, (20, 100, 500)),
        ((3, 0), "float32", {}, (3, 1)),
    ],
)
def test_chunk_shapes(shape, dtype, chunks, expected):
    import numpy as np

    from preload.convert.netcdf_zarr import SLAB_BYTES, Options, _slab_shape

    dims = ("time", "lat", "lon")[: len(shape)]
    var = xr.Variable(dims, np.empty(shape, dtype=dtype))
    chunk = Options.checked(chunks, "zstd", None).chunk_shape(var)
    assert chunk == expected
    # Slabs are whole chunks, about SLAB_BYTES (or one chunk if that is larger).
    slab = _slab_shape(shape, chunk, var.dtype.itemsize)
    for n, c, s in zip(shape, chunk, slab, strict=True):
        assert s == n or s % c == 0
    slab_bytes = int(np.prod(slab)) * var.dtype.itemsize
    chunk_bytes = int(np.prod(chunk)) * var.dtype.itemsize
    assert slab_bytes <= max(SLAB_BYTES, chunk_bytes)
