"""Reading, checking and writing bathymetry grids in the one form the rest of seamountae uses.

Every reader returns a *canonical grid*: a float32 `xarray.DataArray` named "elevation" in metres,
positive up, NaN for nodata (and for land, cells above 0 m, unless mask_land=False), with dims
exactly ("y", "x") and strictly ascending, regularly spaced float64 coordinates "y" and "x".
Its attrs are units="m", geographic (1 for lon/lat degrees, 0 for projected metres), crs (WKT;
EPSG:4326 for geographic grids, "" for a projected grid of unknown CRS) and source (the file path).
Geographic longitudes lie in -180..180, except a regional grid that straddles the antimeridian,
which keeps ascending longitudes past 180. Downstream code relies on all of this without re-checking.

Layer 2, files: imports layers 1-2 only.
"""

from __future__ import annotations

import logging
import threading
import warnings
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from rasterio.crs import CRS
from rasterio.errors import CRSError, NotGeoreferencedWarning
from rasterio.windows import Window
from xarray.backends import BackendArray
from xarray.core import indexing

from .errors import SeamountaeError
from .geometry import GridGeometry, in_region
from .outputs import atomic_output

log = logging.getLogger("seamountae")

WGS84_WKT = CRS.from_epsg(4326).to_wkt()
WINDOW_CHUNK_CACHE = 1 << 24  # bytes of netCDF chunk cache for a grid read window by window (open_grid)
# HDF5 (under netCDF-4) is not thread-safe: reads of lazily opened netCDF grids hold this lock, and so
# must any other thread of the process that reads or writes netCDF-4 files while they are in use.
HDF5_LOCK = threading.RLock()

# Formats are told apart by content, not extension: GMT's .grd is netCDF, and users rename files.
_NETCDF_MAGIC = (b"CDF\x01", b"CDF\x02", b"CDF\x05", b"\x89HDF\r\n\x1a\n")
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

_KM = {"km", "kilometer", "kilometers", "kilometre", "kilometres"}
_METRES = {"m", "meter", "meters", "metre", "metres"}
_EAST = {"degrees_east", "degree_east", "degrees_e", "degree_e", "degreese", "degreee"}
_NORTH = {"degrees_north", "degree_north", "degrees_n", "degree_n", "degreesn", "degreen"}
_LON_NAMES = {"lon", "long", "longitude"}
_LAT_NAMES = {"lat", "latitude"}
# Old GMT netCDF layout (GMT < 4.1): a 1-D z with the extent in separate variables.
_GMT_LEGACY = {"x_range", "y_range", "dimension", "z"}

_CF_COORDS = {
    True: (
        ("lat", {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude", "axis": "Y"}),
        ("lon", {"units": "degrees_east", "standard_name": "longitude", "long_name": "longitude", "axis": "X"}),
    ),
    False: (
        ("y", {"units": "m", "standard_name": "projection_y_coordinate", "long_name": "northing", "axis": "Y"}),
        ("x", {"units": "m", "standard_name": "projection_x_coordinate", "long_name": "easting", "axis": "X"}),
    ),
}


def read_grid(path, var: str | None = None, depth_positive: bool | None = None, mask_land: bool = True,
              crs: str | None = None, islands: bool = True) -> xr.DataArray:
    """Read a netCDF (CF, COARDS or GMT .grd) grid or a GeoTIFF into a canonical grid, in memory.

    var names the netCDF variable, or the GeoTIFF band number, when the file holds several.
    depth_positive: True if the values are depths (positive down), False if they are elevations,
    None to decide from the variable's `positive` and `standard_name` attributes.
    crs: the grid's CRS ("EPSG:32631", WKT…), for a file that records none (see `_decide_crs`).
    islands: recorded as the grid's `islands` attribute, which tells the candidate search whether
    small islands are the tops of seamounts (candidates.py) or missing data like the rest of the land.
    """
    path = Path(path)
    reader = _read_geotiff if _sniff(path) == "tiff" else _read_netcdf
    values, x, y, geographic, crs, attrs = reader(path, var, crs)
    grid = canonical_grid(_to_elevation(values, attrs, depth_positive), x, y, geographic, crs, str(path), mask_land)
    return grid.assign_attrs(islands=int(bool(islands)))


def open_grid(path, var: str | None = None, depth_positive: bool | None = None, mask_land: bool = True,
              crs: str | None = None, islands: bool = True) -> xr.DataArray:
    """Open a grid file as a canonical grid whose values stay on disk until a window of them is used.

    The same grid as `read_grid` (coordinates, attributes, values cell for cell), but slicing it
    (`grid[r0:r1, c0:c1].values`) reads only that window from the file (netCDF through xarray's lazy
    indexing, GeoTIFF through rasterio windows), so a grid larger than memory can be processed window
    by window. `grid.values` reads everything. Unlike `read_grid`, a grid with no valid cell is not
    detected when opened (that would read the whole file). Old-style GMT grids (1-D z) are read into
    memory. Call `grid.close()` to release the file early.
    """
    path = Path(path)
    if _sniff(path) == "tiff":
        src = _open_geotiff(path)
        try:
            band, x, y, geographic, crs, attrs = _geotiff_grid_band(src, path, var, crs)
        except BaseException:
            src.close()
            raise

        # A GDAL dataset may not be read from two threads at once (score's writer thread reads the
        # elevation back while the main thread reads windows): one read at a time.
        lock = threading.Lock()

        def read(r0, r1, c0, c1):
            with lock:
                return _geotiff_values(src, band, path, Window.from_slices((r0, r1), (c0, c1)))

        def close():
            with lock:
                src.close()
    else:
        import netCDF4

        # netCDF's default chunk cache (64 MB per variable) would grow with the windows read; a
        # window re-reads the few chunks it shares with the previous one instead.
        default_cache = netCDF4.get_chunk_cache()
        netCDF4.set_chunk_cache(WINDOW_CHUNK_CACHE, 1009, 0.75)
        try:
            ds = _open_netcdf_dataset(path)
        finally:
            netCDF4.set_chunk_cache(*default_cache)
        try:
            if _GMT_LEGACY <= set(ds.variables):
                ds.close()
                return read_grid(path, var, depth_positive, mask_land, crs, islands)
            z, x, y, geographic, crs = _netcdf_grid_variable(ds, path, var, crs)
            attrs = dict(z.attrs)
        except BaseException:
            ds.close()
            raise

        def read(r0, r1, c0, c1):
            with HDF5_LOCK:
                return _load(path, z[r0:r1, c0:c1])

        def close():
            with HDF5_LOCK:  # not while another thread reads a window
                ds.close()
    try:
        x, y, rows, cols = _canonical_axes(x, y, geographic, str(path))
    except BaseException:
        close()
        raise

    def convert(values):  # values: a window just read, this function's to change
        values = np.asarray(_to_elevation(values, attrs, depth_positive), dtype=np.float32)
        values[~np.isfinite(values)] = np.nan
        if mask_land:
            values[values > 0] = np.nan
        return values

    data = indexing.LazilyIndexedArray(_GridWindows(read, convert, rows, cols))
    grid = xr.DataArray(
        xr.Variable(("y", "x"), data),
        coords={"y": y, "x": x},
        name="elevation",
        attrs={"units": "m", "geographic": int(bool(geographic)), "crs": WGS84_WKT if geographic else (crs or ""), "source": str(path),
               "islands": int(bool(islands))},
    )
    grid.set_close(close)
    return grid


def _canonical_axes(x, y, geographic: bool, label: str):
    """canonical_grid's coordinates, and for each canonical row and column its index in the file."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    # canonical_grid's own steps, applied to index arrays instead of values, record the reordering.
    x, cols = _ascending(x, np.arange(x.size)[None, :], 1, "x", label)
    y, rows = _ascending(y, np.arange(y.size)[:, None], 0, "y", label)
    if geographic:
        x, cols = _normalise_longitudes(x, cols)
        if np.abs(y).max() > 90 + 1e-6:
            raise SeamountaeError(f"{label}: latitudes reach {np.abs(y).max():g}, beyond 90; the coordinates are not lon/lat degrees, so check the file's CRS")
    return x, y, np.ascontiguousarray(rows[:, 0]), np.ascontiguousarray(cols[0])


def _runs(index: np.ndarray) -> list[tuple[np.ndarray, int, int]]:
    """Split file indices into runs that one contiguous read serves: (positions, first, stop)."""
    step = np.diff(index)
    # A run goes on while indices step by +1 throughout, or by -1 throughout (a flipped axis).
    cut = np.abs(step) != 1
    cut[1:] |= step[1:] != step[:-1]
    runs = []
    for pos in np.split(np.arange(index.size), np.flatnonzero(cut) + 1):
        part = index[pos]
        runs.append((pos, int(part.min()), int(part.max()) + 1))
    return runs


def _order(index: np.ndarray) -> slice:
    """How one run of file indices (see _runs) is read in order: as stored, or reversed."""
    return slice(None, None, -1) if index.size > 1 and index[1] < index[0] else slice(None)


class _GridWindows(BackendArray):
    """The values of a canonical grid, read from the file window by window when indexed."""

    def __init__(self, read, convert, rows: np.ndarray, cols: np.ndarray):
        self._read, self._convert, self._rows, self._cols = read, convert, rows, cols
        self.shape = (rows.size, cols.size)
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, key):
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._window)

    def _window(self, key: tuple):
        rows, cols = np.atleast_1d(self._rows[key[0]]), np.atleast_1d(self._cols[key[1]])
        row_runs, col_runs = (_runs(rows), _runs(cols)) if rows.size and cols.size else ([], [])
        if len(row_runs) == len(col_runs) == 1:  # the common case: one read, no copy into another array
            (_, r0, r1), (_, c0, c1) = row_runs[0], col_runs[0]
            out = np.asarray(self._read(r0, r1, c0, c1), dtype=np.float32)
            flips = _order(rows), _order(cols)
            out = self._convert(out if flips == (slice(None), slice(None)) else out[flips])
        else:
            out = np.full((rows.size, cols.size), np.nan, np.float32)
            for rpos, r0, r1 in row_runs:
                for cpos, c0, c1 in col_runs:
                    block = np.asarray(self._read(r0, r1, c0, c1))
                    out[np.ix_(rpos, cpos)] = block[np.ix_(rows[rpos] - r0, cols[cpos] - c0)]
            if out.size:
                out = self._convert(out)
        shape = tuple(n for k, n in zip(key, out.shape) if not isinstance(k, (int, np.integer)))
        return out.reshape(shape)


def canonical_grid(values, x, y, geographic: bool, crs: str | None = None, source: str = "", mask_land: bool = True) -> xr.DataArray:
    """Build a canonical grid from a (len(y), len(x)) array and its cell-centre coordinates.

    Flips descending axes, snaps near-regular coordinates to exact spacing, normalises longitudes and
    masks land; raises SeamountaeError (naming `source`) if the result is not a usable grid.
    """
    label = source or "grid"
    values = np.array(values, dtype=np.float32)  # a copy: flipped and masked below
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if values.ndim != 2 or x.ndim != 1 or y.ndim != 1 or values.shape != (y.size, x.size):
        raise ValueError(f"values of shape {values.shape} do not match y ({y.shape}) and x ({x.shape})")
    x, values = _ascending(x, values, 1, "x", label)
    y, values = _ascending(y, values, 0, "y", label)
    if geographic:
        x, values = _normalise_longitudes(x, values)
        if np.abs(y).max() > 90 + 1e-6:
            raise SeamountaeError(f"{label}: latitudes reach {np.abs(y).max():g}, beyond 90; the coordinates are not lon/lat degrees, so check the file's CRS")
    values[~np.isfinite(values)] = np.nan
    had_data = bool(np.isfinite(values).any())
    if mask_land:
        values[values > 0] = np.nan
    if not np.isfinite(values).any():
        if had_data:
            raise SeamountaeError(f"{label}: contains no valid cells after masking land (all cells are above 0 m); if the values are depths positive down, pass --depth-positive, otherwise choose a grid that covers ocean")
        raise SeamountaeError(f"{label}: contains no valid cells (all nodata); check --var or the file's contents")
    return xr.DataArray(
        np.ascontiguousarray(values),
        dims=("y", "x"),
        coords={"y": y, "x": x},
        name="elevation",
        attrs={"units": "m", "geographic": int(bool(geographic)), "crs": WGS84_WKT if geographic else (crs or ""), "source": source},
    )


def cut_region(grid: xr.DataArray, region: tuple[float, float, float, float], halo_km: float
               ) -> tuple[xr.DataArray, slice, slice]:
    """The cells of a lon/lat grid inside `region` (west, east, south, north: --region W/E/S/N) and
    `halo_km` around them, cut without reading anything: (cut, rows, cols), the cut grid and the
    region's rows and columns in it.

    A lazily opened grid stays lazy (its windows read only cells of the cut). The halo lets what is
    computed for the region's cells see the seafloor beyond its edges as the whole grid shows it;
    it stops at the grid's edges, and on a global grid it wraps across ±180°, where the cut's
    longitudes go on past 180 (the convention of a grid that straddles the antimeridian). A region
    that with its halo goes round the globe keeps every column.
    """
    geometry = GridGeometry.of(grid)
    label = grid.attrs.get("source") or "grid"
    text = "/".join(f"{v:g}" for v in region)
    if not geometry.geographic:
        raise SeamountaeError(f"{label}: --region {text} is in degrees of longitude and latitude, but the grid is "
                              "projected; cut it in its own coordinates first (e.g. gmt grdcut), or give its lon/lat CRS")
    x, y = grid["x"].values, grid["y"].values
    rows_in = np.flatnonzero((y >= region[2]) & (y <= region[3]))
    cols_in = np.flatnonzero(in_region(x, np.full(x.size, region[2]), region))
    if not (rows_in.size and cols_in.size):
        raise SeamountaeError(f"{label}: --region {text} holds no cell of the grid (x {x[0]:g}..{x[-1]:g}, "
                              f"y {y[0]:g}..{y[-1]:g}); give a W/E/S/N inside it")
    dy_km, _ = geometry.cell_size_km()
    _, dx_km = geometry.row_km(rows_in[[0, -1]])
    halo_rows, halo_cols = int(np.ceil(halo_km / dy_km)), int(np.ceil(halo_km / float(dx_km.min())))
    r0, r1 = max(int(rows_in[0]) - halo_rows, 0), min(int(rows_in[-1]) + 1 + halo_rows, geometry.ny)
    # The region's columns in order from its west edge: across the seam of a global grid, its last ones first.
    first = int(cols_in[np.argmin(np.mod(x[cols_in] - region[0], 360.0))])
    width = int(cols_in.size)
    if geometry.wraps and width + 2 * halo_cols < geometry.nx:
        cols = np.arange(first - halo_cols, first + width + halo_cols) % geometry.nx
        inner = slice(halo_cols, halo_cols + width)
    elif geometry.wraps:
        cols, inner = np.arange(geometry.nx), slice(0, geometry.nx)
    else:
        c0, c1 = max(first - halo_cols, 0), min(first + width + halo_cols, geometry.nx)
        cols, inner = np.arange(c0, c1), slice(first - c0, first - c0 + width)
    contiguous = bool(np.all(np.diff(cols) == 1))
    cut = grid.isel(y=slice(r0, r1), x=slice(int(cols[0]), int(cols[-1]) + 1) if contiguous else cols)
    if not contiguous:  # longitudes go on past 180 across the seam
        lon = x[cols]
        cut = cut.assign_coords(x=lon + 360.0 * (np.arange(lon.size) >= np.argmin(lon)) * (lon[0] > lon[-1]))
    cut.attrs = {**grid.attrs, "region": text}
    return cut, slice(int(rows_in[0]) - r0, int(rows_in[-1]) + 1 - r0), inner


READ_STRIP_CELLS = 1 << 21  # cells read at once by read_window


def read_window(grid: xr.DataArray, r0: int, r1: int, c0: int, c1: int, wrap: bool = False,
                dtype=np.float32) -> np.ndarray:
    """grid[r0:r1, c0:c1] as `dtype`, NaN (0 for integers) where the window leaves the grid; reads
    only what it needs.

    With `wrap`, columns outside the grid are taken across the antimeridian (modulo the width).
    """
    ny, nx = grid.shape
    rr0, rr1 = max(r0, 0), min(r1, ny)
    cc0, cc1 = max(c0, 0), min(c1, nx)
    strip = max(1, READ_STRIP_CELLS // max(c1 - c0, 1))
    if r1 - r0 > strip:  # a large window in strips: a file's decoding copies stay strip-sized
        out = np.empty((r1 - r0, c1 - c0), dtype)
        for a in range(r0, r1, strip):
            out[a - r0 : min(a + strip, r1) - r0] = read_window(grid, a, min(a + strip, r1), c0, c1, wrap, dtype)
        return out
    if not wrap and (rr0, rr1, cc0, cc1) == (r0, r1, c0, c1) and r0 < r1 and c0 < c1:
        values = grid[r0:r1, c0:c1].values
        if values.flags.owndata and values.dtype == dtype:
            return values  # read from a file just now: already what is asked for, and the caller's own
        return values.astype(dtype)  # a view of a grid in memory: a copy
    out = np.full((r1 - r0, c1 - c0), np.nan if np.issubdtype(dtype, np.floating) else 0, dtype)
    if rr0 >= rr1 or c0 >= c1:
        return out
    if not wrap:
        if cc0 < cc1:
            out[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = grid[rr0:rr1, cc0:cc1].values
        return out
    c = c0
    while c < c1:  # whole laps of the globe, then the pieces of the last one
        start = c % nx
        n = min(nx - start, c1 - c)
        out[rr0 - r0 : rr1 - r0, c - c0 : c - c0 + n] = grid[rr0:rr1, start : start + n].values
        c += n
    return out


def to_cf_dataset(variables: dict[str, xr.DataArray], like: xr.DataArray, attrs: dict | None = None) -> xr.Dataset:
    """Wrap ("y", "x") arrays on `like`'s coordinates into a georeferenced CF-1.8 Dataset.

    Geographic grids get lat/lon coordinates; projected grids get y/x in metres and a scalar `crs`
    variable (crs_wkt and spatial_ref, which GDAL and xarray tools read) named by each variable's
    grid_mapping.
    """
    geographic = bool(like.attrs["geographic"])
    crs = "" if geographic else like.attrs.get("crs", "")
    (ydim, yattrs), (xdim, xattrs) = _CF_COORDS[geographic]
    data_vars = {}
    for name, array in variables.items():
        if array.dims[-2:] != ("y", "x") or array.shape[-2:] != like.shape:
            raise ValueError(f"variable {name} has dims {array.dims} and shape {array.shape}, not (..., 'y', 'x') and {like.shape}")
        # crs and geographic are recorded once for the dataset, not repeated on every variable.
        var_attrs = {k: v for k, v in array.attrs.items() if k not in ("crs", "geographic")}
        if crs:
            var_attrs["grid_mapping"] = "crs"
        data_vars[name] = ((*array.dims[:-2], ydim, xdim), array.values, var_attrs)
    if crs:
        data_vars["crs"] = ((), np.int32(0), {"crs_wkt": crs, "spatial_ref": crs})
    coords = {ydim: (ydim, like["y"].values, yattrs), xdim: (xdim, like["x"].values, xattrs)}
    return xr.Dataset(data_vars, coords, attrs={"Conventions": "CF-1.8", **(attrs or {}), "geographic": int(geographic)})


def georeferenced(ds: xr.Dataset, like: xr.DataArray) -> xr.Dataset:
    """A dataset whose ("y", "x") variables are on `like`'s grid, made CF-georeferenced for writing.

    Variables on other dimensions (a per-seamount table) and the dataset's attributes come along.
    """
    on_grid = {name: var for name, var in ds.data_vars.items() if var.dims[-2:] == ("y", "x")}
    cf = to_cf_dataset(on_grid, like, {**ds.attrs, "crs": like.attrs.get("crs", "")})
    others = ds.drop_vars(list(on_grid)).drop_dims(["y", "x"], errors="ignore")
    return cf.merge(others, combine_attrs="override")


def from_cf_dataset(ds: xr.Dataset) -> xr.Dataset:
    """Inverse of `georeferenced`: back to dims ("y", "x") with `geographic` and `crs` as attributes."""
    geographic = bool(int(ds.attrs.get("geographic", 0)))
    (ydim, _), (xdim, _) = _CF_COORDS[geographic]
    out = ds.drop_vars("crs", errors="ignore").rename({ydim: "y", xdim: "x"}) if geographic else ds.drop_vars("crs", errors="ignore")
    for name in out.data_vars:
        out[name].attrs.pop("grid_mapping", None)
    if "crs" in ds.variables and not geographic:
        out.attrs["crs"] = str(ds["crs"].attrs.get("crs_wkt", ""))
    elif geographic:
        out.attrs["crs"] = WGS84_WKT
    for name in out.data_vars:
        if out[name].dims == ("y", "x"):
            out[name].attrs.update(geographic=int(geographic), crs=out.attrs["crs"])
    return out


def write_grid(grid: xr.DataArray, path, overwrite: bool = False, attrs: dict | None = None) -> None:
    """Write a canonical grid atomically: .tif/.tiff as a north-up GeoTIFF, anything else as CF netCDF-4."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        with atomic_output(path, overwrite) as tmp:
            _write_geotiff(grid, tmp, attrs)
        return
    name = str(grid.name or "elevation")
    ds = to_cf_dataset({name: grid}, grid, attrs)
    encoding = {c: {"_FillValue": None} for c in ds.coords}  # coordinates never have missing values
    encoding[name] = {"dtype": "float32", "zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan)}
    with atomic_output(path, overwrite) as tmp:
        # The temporary file ends in .part, so the format cannot be guessed from the name.
        ds.to_netcdf(tmp, format="NETCDF4", engine="netcdf4", encoding=encoding)


def _sniff(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except FileNotFoundError:
        raise SeamountaeError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise SeamountaeError(f"{path}: is a directory; give the path of a grid file") from None
    except OSError as exc:
        raise SeamountaeError(f"{path}: cannot be read ({exc.strerror or exc}); check the file's permissions") from None
    if head.startswith(_NETCDF_MAGIC):
        return "netcdf"
    if head[:4] in _TIFF_MAGIC:
        return "tiff"
    raise SeamountaeError(f"{path}: is not a readable netCDF or GeoTIFF file; convert it with gmt grdconvert or gdal_translate")


def _unreadable(path: Path, exc: Exception) -> SeamountaeError:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return SeamountaeError(f"{path}: is not a readable netCDF or GeoTIFF file ({detail}); it may be truncated or corrupt, so download or export it again")


def _load(path: Path, array) -> np.ndarray:
    """Read an array's values from disk; a damaged file fails here with a library-specific error."""
    try:
        return np.asarray(array.values)
    except Exception as exc:  # netCDF4/HDF5 report damage as RuntimeError, OSError, IndexError, ...
        raise _unreadable(path, exc) from exc


def _open_netcdf_dataset(path: Path) -> xr.Dataset:
    try:
        return xr.open_dataset(path, engine="netcdf4", decode_times=False, decode_timedelta=False)
    except Exception as exc:  # as in _load: the libraries give no single exception type for a bad file
        raise _unreadable(path, exc) from exc


def _netcdf_grid_variable(ds: xr.Dataset, path: Path, var: str | None, given_crs: str | None = None):
    """The (y, x) variable of an open netCDF file, still on disk, with its coordinates and CRS."""
    if _GMT_LEGACY <= set(ds.variables):
        z = _gmt_legacy(ds, path)
        crs = None
    else:
        z = _pick_variable(ds, var, path)
        z = z.transpose(*_yx_dims(ds, z, path))
        crs = _netcdf_crs(ds, z, path)
    yc, xc = z[z.dims[0]], z[z.dims[1]]
    x, y = _load(path, xc), _load(path, yc)
    if given_crs or crs:
        geographic, crs = _decide_crs(path, crs, given_crs, x, y)
    else:
        geographic = _is_geographic(xc, yc)
        if geographic is None:  # nothing in the file says (GMT's x/y without units)
            geographic, crs = _decide_crs(path, None, None, x, y)
    if not geographic and _units(xc) in _KM:
        x, y = x * 1000.0, y * 1000.0
    return z, x, y, geographic, crs


def _read_netcdf(path: Path, var: str | None, given_crs: str | None = None):
    with _open_netcdf_dataset(path) as ds:  # closes the file once the values are in memory
        z, x, y, geographic, crs = _netcdf_grid_variable(ds, path, var, given_crs)
        return _load(path, z), x, y, geographic, crs, dict(z.attrs)


def _pick_variable(ds: xr.Dataset, var: str | None, path: Path) -> xr.DataArray:
    # CF cell-bounds variables (lat_bnds(lat, 2)) are 2-D but not grids.
    bounds = {str(v.attrs["bounds"]) for v in ds.variables.values() if "bounds" in v.attrs}
    grids = [
        str(name)
        for name, v in ds.data_vars.items()
        if str(name) not in bounds and v.ndim >= 2 and all(v.sizes[d] == 1 for d in v.dims[:-2])
    ]
    if var is not None:
        if var not in grids:
            problem = "is not a 2-D grid" if var in ds.data_vars else "does not exist"
            raise SeamountaeError(f"{path}: variable {var!r} {problem}; pass --var with one of: {', '.join(grids) or '(none)'}")
        name = var
    elif len(grids) == 1:
        name = grids[0]
    elif not grids:
        raise SeamountaeError(f"{path}: no 2-D variable found; this is not a bathymetry grid")
    else:
        raise SeamountaeError(f"{path}: has several 2-D variables ({', '.join(grids)}); pass --var NAME to choose one")
    z = ds[name]
    return z.isel({d: 0 for d in z.dims[:-2]})  # drop length-1 leading dims such as time


def _axis(ds: xr.Dataset, dim) -> str | None:
    """'x', 'y' or None for a dimension, from its coordinate's attributes or its name."""
    attrs = ds[dim].attrs if dim in ds.variables else {}
    axis = str(attrs.get("axis", "")).upper()
    units = str(attrs.get("units", "")).strip().lower()
    std = str(attrs.get("standard_name", "")).lower()
    name = str(dim).lower()
    if axis == "X" or units in _EAST or std in ("longitude", "projection_x_coordinate") or name in _LON_NAMES | {"x", "easting"}:
        return "x"
    if axis == "Y" or units in _NORTH or std in ("latitude", "projection_y_coordinate") or name in _LAT_NAMES | {"y", "northing"}:
        return "y"
    return None


def _yx_dims(ds: xr.Dataset, z: xr.DataArray, path: Path) -> tuple:
    first, second = z.dims
    for dim in z.dims:
        if dim not in ds.variables:
            raise SeamountaeError(f"{path}: dimension {dim} of variable {z.name} has no coordinate values; the grid is not georeferenced, so add coordinates (e.g. gmt grdedit -R)")
    # Row-major (y, x) is the norm; swap only when the metadata says the first axis is x.
    if _axis(ds, first) == "x" or _axis(ds, second) == "y":
        return second, first
    return first, second


def _netcdf_crs(ds: xr.Dataset, z: xr.DataArray, path: Path) -> str | None:
    mapping = z.attrs.get("grid_mapping")
    if mapping not in ds.variables:
        return None
    attrs = ds[mapping].attrs
    wkt = attrs.get("crs_wkt") or attrs.get("spatial_ref")
    if not wkt:
        return None
    try:
        CRS.from_wkt(wkt)
    except CRSError:
        raise SeamountaeError(f"{path}: the CRS in grid_mapping variable {mapping} is not valid WKT; fix or remove its crs_wkt attribute") from None
    return str(wkt)


def _units(coord: xr.DataArray) -> str:
    return str(coord.attrs.get("units", "")).strip().lower()


def _is_geographic(xc: xr.DataArray, yc: xr.DataArray) -> bool | None:
    """What a netCDF grid's coordinate metadata says (units, standard or plain names); None: nothing."""
    units = {_units(xc), _units(yc)}
    std = {str(c.attrs.get("standard_name", "")).lower() for c in (xc, yc)}
    if any(u.startswith("degree") for u in units) or std & {"longitude", "latitude"}:
        return True
    if units & (_METRES | _KM) or std & {"projection_x_coordinate", "projection_y_coordinate"}:
        return False
    if {str(xc.name).lower(), str(yc.name).lower()} & (_LON_NAMES | _LAT_NAMES):
        return True
    return None


def parse_crs(value: str, label: str = "--crs") -> CRS:
    """A CRS from what a user types (EPSG:4326, a PROJ string, WKT), or a one-line error."""
    try:
        return CRS.from_user_input(value)
    except CRSError:
        raise SeamountaeError(f"{label} {value!r}: not a CRS; give one like EPSG:4326 (lon/lat) or EPSG:32631 "
                              "(UTM zone 31N)") from None


def _decide_crs(path: Path, file_crs: str | None, given: str | None, x: np.ndarray, y: np.ndarray):
    """(geographic, crs WKT or None) of a grid: the CRS given (--crs) over the file's own; with
    neither, lon/lat degrees where the bounds can only be degrees, said in one warning (GMT grids
    and bare GeoTIFFs are usually lon/lat, but a projected grid written without its CRS would be
    measured in the wrong units), and anything else is refused."""
    if given:
        crs = parse_crs(given)
        if file_crs and CRS.from_wkt(file_crs) != crs:
            log.info("%s: read with --crs %s instead of the CRS it records", path, given)
        return crs.is_geographic, crs.to_wkt()
    if file_crs:
        return CRS.from_wkt(file_crs).is_geographic, file_crs
    with np.errstate(invalid="ignore"):
        degrees = bool(np.nanmax(np.abs(x)) <= 360 and np.nanmax(np.abs(y)) <= 90)
    if degrees:
        log.warning("%s: records no CRS; read as lon/lat degrees (WGS84) since its bounds fit; if it is projected, "
                    "give its CRS with --crs EPSG:… (--crs EPSG:4326 confirms lon/lat and silences this)", path)
        return True, None
    raise SeamountaeError(f"{path}: records no CRS and its coordinates (x {np.nanmin(x):g}..{np.nanmax(x):g}, "
                          f"y {np.nanmin(y):g}..{np.nanmax(y):g}) are not degrees, so their unit is unknown; "
                          "give its CRS with --crs EPSG:… (e.g. EPSG:32631 for UTM 31N)")


def _gmt_legacy(ds: xr.Dataset, path: Path) -> xr.DataArray:
    """The old GMT layout as a (y, x) DataArray; z is stored row by row from the north."""
    nx, ny = (int(n) for n in _load(path, ds["dimension"]))
    z = ds["z"]
    if z.ndim != 1 or z.size != nx * ny:
        raise SeamountaeError(f"{path}: old-style GMT grid has {z.size} values but dimension says {nx} x {ny}; the file is corrupt, so export it again")
    pixel = int(z.attrs.get("node_offset", 0)) == 1
    x = _nodes(*_load(path, ds["x_range"]), nx, pixel)
    y = _nodes(*_load(path, ds["y_range"]), ny, pixel)[::-1]
    attrs = {"units": ds["z_range"].attrs.get("units", "")} if "z_range" in ds.variables else {}
    return xr.DataArray(
        _load(path, z).reshape(ny, nx),
        dims=("y", "x"),
        coords={"y": ("y", y, ds["y_range"].attrs), "x": ("x", x, ds["x_range"].attrs)},
        attrs={**attrs, **z.attrs},
    )


def _nodes(start: float, stop: float, n: int, pixel: bool) -> np.ndarray:
    if pixel:  # the range spans cell edges; coordinates are cell centres
        return start + (stop - start) / n * (np.arange(n) + 0.5)
    return np.linspace(start, stop, n)


def _open_geotiff(path: Path):
    try:
        with warnings.catch_warnings():
            # A TIFF without georeferencing is rejected below, with a clearer message than the warning.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            return rasterio.open(path)
    except Exception as exc:  # rasterio raises RasterioIOError, CPLE_* errors or OSError
        raise _unreadable(path, exc) from exc


def _geotiff_grid_band(src, path: Path, var: str | None, given_crs: str | None = None):
    """The band of an open GeoTIFF, its cell-centre coordinates, CRS and unit attributes."""
    band = _pick_band(src, var, path)
    t = src.transform
    if t.b != 0 or t.d != 0:
        raise SeamountaeError(f"{path}: the GeoTIFF is rotated or sheared; warp it north-up first (gdalwarp)")
    if src.crs is None and t.is_identity:
        raise SeamountaeError(f"{path}: the TIFF has no georeferencing; add it with gdal_translate -a_srs and -a_ullr")
    x = t.c + t.a * (np.arange(src.width) + 0.5)
    y = t.f + t.e * (np.arange(src.height) + 0.5)
    tags = src.tags(band)
    attrs = {"units": src.units[band - 1] or tags.get("units", ""), "positive": tags.get("positive", ""), "standard_name": tags.get("standard_name", "")}
    geographic, crs = _decide_crs(path, src.crs.to_wkt() if src.crs else None, given_crs, x, y)
    return band, x, y, geographic, crs, attrs


def _geotiff_values(src, band: int, path: Path, window=None) -> np.ndarray:
    """A band's values (or a rasterio Window of them) as float32 with NaN for nodata, scale and offset applied."""
    try:
        data = src.read(band, masked=True, window=window)
    except Exception as exc:
        raise _unreadable(path, exc) from exc
    values = np.ma.filled(data.astype(np.float32), np.nan)
    scale, offset = src.scales[band - 1], src.offsets[band - 1]
    if scale != 1 or offset != 0:
        values = values * np.float32(scale) + np.float32(offset)
    return values


def _read_geotiff(path: Path, var: str | None, given_crs: str | None = None):
    with _open_geotiff(path) as src:
        band, x, y, geographic, crs, attrs = _geotiff_grid_band(src, path, var, given_crs)
        return _geotiff_values(src, band, path), x, y, geographic, crs, attrs


def _pick_band(src, var: str | None, path: Path) -> int:
    if var is None:
        if src.count > 1:
            raise SeamountaeError(f"{path}: has {src.count} bands; pass --var N to choose one (1 to {src.count})")
        return 1
    try:
        band = int(var)
    except ValueError:
        band = 0
    if not 1 <= band <= src.count:
        raise SeamountaeError(f"{path}: has no band {var!r}; pass --var with a band number from 1 to {src.count}")
    return band


def _to_elevation(values, attrs: dict, depth_positive: bool | None) -> np.ndarray:
    """Convert heights in m or km, positive up or down, to float32 metres positive up."""
    values = np.asarray(values, dtype=np.float32)
    if str(attrs.get("units", "")).strip().lower() in _KM:
        values = values * np.float32(1000)
    if depth_positive is None:
        depth_positive = (
            str(attrs.get("positive", "")).strip().lower() == "down"
            or "depth" in str(attrs.get("standard_name", "")).lower()
        )
    return -values if depth_positive else values


def _ascending(c: np.ndarray, values: np.ndarray, axis: int, name: str, label: str):
    """Make one axis strictly ascending and exactly regular, or explain why it cannot be."""
    if c.size < 2:
        raise SeamountaeError(f"{label}: has only {c.size} cell(s) along {name}; a grid needs at least 2 in each direction")
    if not np.isfinite(c).all():
        raise SeamountaeError(f"{label}: {name} coordinates contain NaN or infinite values; fix the file's coordinates")
    step = np.diff(c)
    if (step < 0).all():
        c, values, step = c[::-1], np.flip(values, axis), -step[::-1]
    elif not (step > 0).all():
        raise SeamountaeError(f"{label}: {name} coordinates are not monotonic (repeated or out of order); sort or resample the grid (gmt grdsample or gdalwarp)")
    mean = (c[-1] - c[0]) / (c.size - 1)
    # Coordinates stored as float32 carry rounding noise of about 1e-7 of their magnitude.
    if np.abs(step - mean).max() > 1e-4 * mean + 2.5e-7 * np.abs(c).max():
        raise SeamountaeError(f"{label}: {name} coordinates are irregularly spaced (steps {step.min():.6g} to {step.max():.6g}); resample to a regular grid (gmt grdsample or gdalwarp)")
    return np.linspace(c[0], c[-1], c.size), values


def _normalise_longitudes(x: np.ndarray, values: np.ndarray):
    """Drop the repeated meridian of a gridline-registered global grid (-180..180 or 0..360); shift a
    grid lying wholly east of 180 by -360; roll a global 0..360 grid to start at -180."""
    dx = x[1] - x[0]
    if x[-1] - x[0] >= 360 - dx / 2:  # the last meridian repeats the first: wrapping reads it once
        x, values = x[:-1], values[:, :-1]
    if x[0] >= 180:
        return x - 360, values
    if x[-1] > 180 and x.size * dx >= 360 - dx / 2:
        k = int((x >= 180).sum())
        return (x[-k] - 360) + dx * np.arange(x.size), np.roll(values, k, axis=1)
    return x, values


def _spacing(c: np.ndarray) -> float:
    return float((c[-1] - c[0]) / (c.size - 1))


def _write_geotiff(grid: xr.DataArray, tmp: Path, attrs: dict | None) -> None:
    geometry = GridGeometry.of(grid)
    crs = grid.attrs.get("crs")
    profile = {
        "driver": "GTiff",  # the temporary .part name does not tell rasterio the format
        "width": geometry.nx,
        "height": geometry.ny,
        "count": 1,
        "dtype": "float32",
        "crs": CRS.from_wkt(crs) if crs else None,
        "transform": geometry.north_up_transform(),
        "nodata": np.nan,
        "compress": "deflate",
        "predictor": 3,
    }
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(np.flipud(grid.values).astype(np.float32), 1)  # north-up: first row is the northernmost
        dst.set_band_unit(1, "m")
        if attrs:
            dst.update_tags(**{str(k): str(v) for k, v in attrs.items()})
