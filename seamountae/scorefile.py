"""The score file: its format (variables, levels, attributes) and its writers.

A score file holds the grid's elevation, the error, relief and conformal score of every pyramid
level (dims level, y, x) and the judged candidates table (evidence.py). It is written in memory
(`score_dataset`) or tile by tile into chunked, compressed netCDF-4 or Zarr (`create_score_file`,
`write_tiles`), by `score`, SLURM array parts (parts.py) and dask (cluster.py); `merge`, `detect` and
`plot` read it; `geotiff_from_score` turns its maps into a Cloud-Optimized GeoTIFF for viewing.

Layer 5, stages: imports layers 1-5 only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from . import lattice
from .evidence import candidates_dataset
from .geometry import GridGeometry
from .grid import HDF5_LOCK, read_window
from .model import calibration_errors
from .outputs import is_zarr
from .runner import OUTPUTS
from .calibration import conformal_score

# Zarr stores keep every chunk in its own file: taller chunks (1 MB), so a global grid is not
# hundreds of thousands of files. Dask blocks that write into a store are aligned to them.
ZARR_CHUNK_ROWS = 256
# Tiles cover whole chunks, so each chunk is compressed and written once, straight through: no chunk
# cache. (With one, even a small one, HDF5's memory grew by the compressed size of all that was
# written, ~100 MB per 36 million cells, until the file was closed.)
OUTPUT_CHUNK_CACHE = 0

LEVEL_ATTRS = {"units": "km", "long_name": "patch width of this pyramid level"}
VARIABLES = {
    "elevation": {"units": "m", "long_name": "elevation (positive up)", "positive": "up"},
    "error": {"units": "1", "long_name": "reconstruction error (fraction of patch variance)"},
    "score": {"units": "1", "long_name": "seamount-likeness: conformal p-value against held-out seamounts"},
    "relief_m": {"units": "m", "long_name": "patch centre relief above the patch's outer ring"},
}
DIMS = {name: ("y", "x") if name == "elevation" else ("level", "y", "x") for name in VARIABLES}


def cell_outputs(elevation: np.ndarray, maps: dict[str, np.ndarray], calibration_errors) -> dict[str, np.ndarray]:
    """The score dataset's variables on some cells: missing elevation → missing everywhere."""
    elevation = np.asarray(elevation, np.float32)
    missing = ~np.isfinite(elevation)
    error = np.where(missing, np.nan, maps["error"]).astype(np.float32)
    return {
        "elevation": elevation,
        "error": error,
        "score": conformal_score(error, calibration_errors),
        "relief_m": np.where(missing, np.nan, maps["relief_m"]).astype(np.float32),
    }


def _dataset_attrs(grid: xr.DataArray, meta: dict, stride_px: int, precision: str) -> dict:
    return {
        "seamountae_kind": "score",
        "patch_km": float(meta["patch_km"]),
        "patch_px": int(meta["patch_px"]),
        "pyramid": np.asarray(meta.get("pyramid", [1.0]), float),
        "stride_px": int(stride_px),
        "precision": precision,
        "candidate_rules": json.dumps(meta["candidates"]),
        "threshold_auto": float(meta["threshold"]["value"]),
        "geographic": int(grid.attrs.get("geographic", 0)),
        "crs": grid.attrs.get("crs", ""),
    }


def score_dataset(grid: xr.DataArray, maps: dict[str, np.ndarray], meta: dict, stride_px: int,
                  precision: str = "fp32") -> xr.Dataset:
    """Per-level maps (level, y, x), computed at `precision` → the score dataset."""
    values = cell_outputs(grid.values, maps, calibration_errors(meta, precision))
    return _score_layout(grid, meta, stride_px, values, precision)


def _score_layout(grid: xr.DataArray, meta: dict, stride_px: int, values: dict, precision: str) -> xr.Dataset:
    """The score dataset around `values` (name → array on DIMS): coordinates, levels, attributes."""
    levels = np.asarray([km for km, _, _ in lattice.pyramid_levels(grid, meta, stride_px)], float)
    return xr.Dataset({name: (DIMS[name], values[name], dict(attrs)) for name, attrs in VARIABLES.items()},
                      coords={"y": grid.y, "x": grid.x, "level_km": ("level", levels, LEVEL_ATTRS)},
                      attrs=_dataset_attrs(grid, meta, stride_px, precision))


def _as_os_error(exc: RuntimeError) -> Exception:
    """netCDF4 reports HDF5 failures (a full disk among them) as RuntimeError: make them OSErrors."""
    if "NetCDF" not in str(exc) and "HDF" not in str(exc):
        return exc
    return OSError(str(exc))


class _Writer:
    """Runs write(*item) for each item put, in order, in a background thread (at most `depth` waiting).

    Leaving the block normally waits for the thread to finish and raises its error, if any (an
    error also shows at the next put). Leaving it by an exception (an interrupt) does not wait:
    the thread drops what is left and stops after the item it is on.
    """

    def __init__(self, write, depth: int = 4):
        import queue
        import threading

        self._write, self._queue, self._error, self._abort = write, queue.Queue(depth), None, False
        self._thread = threading.Thread(target=self._run, name="seamountae-writer", daemon=True)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None and not self._abort:
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as exc:  # handed to the main thread
                    self._error = exc

    def put(self, *item) -> None:
        self._raise()
        self._queue.put(item)

    def _raise(self) -> None:
        if self._error is not None:
            error = self._error
            raise (_as_os_error(error) if isinstance(error, RuntimeError) else error)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, kind, value, traceback):
        if kind is not None:
            self._abort = True
            try:
                self._queue.put_nowait(None)  # wakes the thread if it waits for work
            except Exception:  # full: the thread stops at its next item
                pass
            return False
        self._queue.put(None)
        self._thread.join()
        self._raise()
        return False


def create_score_file(path, grid: xr.DataArray, meta: dict, stride_px: int, attrs: dict | None = None,
                      rows: slice = slice(None), precision: str = "fp32", cols: slice = slice(None)):
    """A new score file for `rows` × `cols` of the grid, its variables created empty; returns the open netCDF4.Dataset
    (or, for a path ending in .zarr, a Zarr store that is filled the same way).

    The layout comes from the in-memory writer's own functions, on data that takes no memory:
    xarray writes coordinates, CRS and attributes as outputs.write_netcdf does; netCDF4 then adds
    the grids as chunked, compressed variables for the caller to fill tile by tile.
    """
    import netCDF4

    from .grid import georeferenced

    grid = grid.isel(y=rows, x=cols)
    n_levels = len(lattice.pyramid_levels(grid, meta, stride_px))
    empty = {name: np.broadcast_to(np.float32(np.nan), grid.shape if name == "elevation" else (n_levels, *grid.shape))
             for name in VARIABLES}
    cf = georeferenced(_score_layout(grid, meta, stride_px, empty, precision), grid)
    cf.attrs.update(attrs or {})
    ydim, xdim = cf["elevation"].dims
    ny, nx = grid.shape
    chunks = (min(ny, lattice.CHUNK_ROWS), min(nx, lattice.CHUNK_COLS))
    if is_zarr(path):
        return _create_zarr_store(path, cf, (min(ny, ZARR_CHUNK_ROWS), chunks[1]))
    variable_attrs = {name: dict(cf[name].attrs) for name in VARIABLES}
    cf.drop_vars(list(VARIABLES)).to_netcdf(path, format="NETCDF4", engine="netcdf4")
    default_cache = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(OUTPUT_CHUNK_CACHE, 1009, 1.0)  # for the variables created below
    try:
        nc = netCDF4.Dataset(path, "a")
    except RuntimeError as exc:
        raise _as_os_error(exc) from exc
    finally:
        netCDF4.set_chunk_cache(*default_cache)
    try:
        for name, a in variable_attrs.items():
            on_levels = name != "elevation"
            # zlib level 1: as small as level 4 here (±3 %), and 20 % faster to write.
            v = nc.createVariable(name, "f4", (("level",) if on_levels else ()) + (ydim, xdim), zlib=True,
                                  complevel=1, shuffle=True, chunksizes=((1,) if on_levels else ()) + chunks,
                                  fill_value=np.float32(np.nan))
            v.set_var_chunk_cache(size=OUTPUT_CHUNK_CACHE, nelems=1009, preemption=1.0)
            v.setncatts(a)
    except BaseException as exc:
        nc.close()
        raise _as_os_error(exc) if isinstance(exc, RuntimeError) else exc
    return nc


class ZarrStore:
    """A Zarr score store open for filling: variables by name, as a netCDF4.Dataset gives them."""

    def __init__(self, path):
        import zarr

        self._group = zarr.open_group(str(path), mode="r+")

    def __getitem__(self, name):
        return self._group[name]

    def close(self) -> None:
        pass  # every write went straight to the store's chunk files


def _create_zarr_store(path, cf: xr.Dataset, chunks: tuple[int, int]) -> ZarrStore:
    """The score file's layout as a Zarr store (a *.zarr output): xarray writes coordinates,
    attributes and empty variables, chunked like the netCDF file; tiles then go straight in."""
    import dask.array as da

    empty = cf.copy()
    encoding = {}
    for name in VARIABLES:
        var = cf[name]
        var_chunks = ((1,) if var.ndim == 3 else ()) + chunks
        empty[name] = var.copy(data=da.full(var.shape, np.nan, dtype=np.float32, chunks=var_chunks))
        encoding[name] = {"chunks": var_chunks}
    # Zarr format 2 with consolidated metadata: what GDAL, QGIS and older zarr readers open.
    empty.to_zarr(str(path), mode="w", compute=False, encoding=encoding, zarr_format=2, consolidated=True)
    return ZarrStore(path)


def write_cells(store, grid: xr.DataArray, calibration, k: int, rows: slice, cols: slice, out: dict,
                row0: int = 0, col0: int = 0) -> tuple[int, int]:
    """Finish one tile and write it into an open score store (whose first cell is grid cell (`row0`, `col0`)):
    its elevation (read back from the grid) on level 0, error, relief and conformal score on level k.
    Returns the counts of cells with an elevation (level 0 only) and with an error."""
    elevation = read_window(grid, rows.start, rows.stop, cols.start, cols.stop)
    values = cell_outputs(elevation, out, calibration)
    local = slice(rows.start - row0, rows.stop - row0), slice(cols.start - col0, cols.stop - col0)
    with HDF5_LOCK:
        if k == 0:
            store["elevation"][local] = elevation
        for name in OUTPUTS + ("score",):
            store[name][(k, *local)] = values[name]
    return (int(np.isfinite(elevation).sum()) if k == 0 else 0), int(np.isfinite(values["error"]).sum())


def write_tiles(grid: xr.DataArray, meta: dict, stride_px: int, path, tiles, attrs: dict | None = None,
                rows: slice = slice(None), progress: bool = False, precision: str = "fp32",
                cols: slice = slice(None)) -> dict[str, int]:
    """Write (level, rows, cols, {"error", "relief_m"}) tiles, computed at `precision`, in any order,
    into a new score file of `rows` × `cols` of the grid.

    Each tile is finished (`write_cells`) and written in a second thread while the caller produces
    the next one (the model, or a dask cluster): writing is a quarter of the work on one CPU core.
    Returns cells, valid and scored counts.
    """
    r0, r1, _ = rows.indices(grid.sizes["y"])
    c0, c1, _ = cols.indices(grid.sizes["x"])
    calibration = calibration_errors(meta, precision)
    nc = create_score_file(path, grid, meta, stride_px, attrs, slice(r0, r1), precision, slice(c0, c1))
    n_levels = len(lattice.pyramid_levels(grid, meta, stride_px))
    counts = {"cells": (r1 - r0) * (c1 - c0), "valid": 0, "scored": 0}
    try:
        def write(k: int, tile_rows: slice, tile_cols: slice, out: dict) -> None:
            valid, scored = write_cells(nc, grid, calibration, k, tile_rows, tile_cols, out, r0, c0)
            counts["valid"] += valid
            counts["scored"] += scored

        with _Writer(write) as writer:
            for item in lattice.progress_cells(tiles, progress, n_levels * counts["cells"]):
                writer.put(*item)
    finally:
        with HDF5_LOCK:  # after an interrupt the writer may still be busy with a tile
            nc.close()
    return counts


def append_candidates(path, table) -> int:
    """Add the judged candidates (evidence.judge_grid) to a finished score file or store; returns their count."""
    ds = candidates_dataset(table)
    if is_zarr(path):
        with xr.open_zarr(str(path)) as store:
            ds.attrs = dict(store.attrs)  # appending rewrites the store's attributes: keep them
        ds.to_zarr(str(path), mode="a", zarr_format=2, consolidated=True)
    else:
        with HDF5_LOCK:
            ds.to_netcdf(path, mode="a", engine="netcdf4")
    return len(table)


def is_geotiff(path) -> bool:
    """Score outputs named *.tif / *.tiff are GeoTIFFs for viewing: score and error bands."""
    return str(path).lower().endswith((".tif", ".tiff"))


def geotiff_from_score(score_path, path, attrs: dict | None = None, block_rows: int = 512) -> None:
    """Write the maps of a score file as a tiled, compressed Cloud-Optimized GeoTIFF at `path`.

    Bands: the score and the error of each pyramid level (described as such), float32, NaN as
    nodata, north-up, with the grid's CRS; `attrs` become dataset tags. Written block by block
    (memory follows the block, not the grid), through a tiled GeoTIFF that GDAL's COG driver
    then lays out with overviews. The candidates table stays in the netCDF score file.
    """
    import rasterio
    from rasterio.crs import CRS
    from rasterio.shutil import copy as raster_copy
    from .grid import from_cf_dataset

    with xr.open_dataset(score_path, engine="netcdf4") as raw:
        ds = from_cf_dataset(raw)
        geometry = GridGeometry.of(ds)
        levels = np.atleast_1d(ds["level_km"].values)
        bands = [(name, k) for k in range(levels.size) for name in ("score", "error")]
        crs = ds.attrs.get("crs") or None
        profile = {"driver": "GTiff", "width": geometry.nx, "height": geometry.ny, "count": len(bands), "dtype": "float32",
                   "crs": CRS.from_wkt(crs) if crs else None, "nodata": np.nan,
                   "transform": geometry.north_up_transform(),
                   "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3,
                   "BIGTIFF": "IF_SAFER"}
        staging = Path(str(path) + ".tiled.tif")
        try:
            with rasterio.open(staging, "w", **profile) as dst:
                for i, (name, k) in enumerate(bands, start=1):
                    suffix = f" at {levels[k]:g} km" if levels.size > 1 else ""
                    dst.set_band_description(i, f"{name}{suffix}: {VARIABLES[name]['long_name']}")
                ny = geometry.ny
                for r0 in range(0, ny, block_rows):
                    r1 = min(r0 + block_rows, ny)
                    window = rasterio.windows.Window(0, ny - r1, geometry.nx, r1 - r0)  # north-up: the last rows first
                    for i, (name, k) in enumerate(bands, start=1):
                        block = ds[name].isel(level=k, y=slice(r0, r1)).values.astype(np.float32)
                        dst.write(np.flipud(block), i, window=window)
                dst.update_tags(**{str(k): str(v) for k, v in (attrs or {}).items()})
            raster_copy(staging, path, driver="COG", compress="DEFLATE", predictor="FLOATING_POINT", BIGTIFF="IF_SAFER")
        finally:
            staging.unlink(missing_ok=True)
