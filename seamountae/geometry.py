"""Where a grid's cells lie on the Earth: the one place seamountae turns coordinates into cell
indices and kilometres.

A canonical grid (grid.py) has regular, ascending x and y. Its `GridGeometry`, built once per grid
(`GridGeometry.of`), owns:
- the local scale: km per cell along y, and along x at each row (the cosine of latitude on a
  lon/lat grid; the CRS's linear unit, metres or feet, on a projected one);
- coordinate ↔ index conversion (indices may run past the edges: callers read such windows with
  grid.read_window, which wraps them on a global grid);
- the grid's longitude convention (-180..180, or ascending past 180 for a grid that straddles the
  antimeridian) and whether it wraps (a global grid's period is its width, nx);
- distances: great-circle on lon/lat grids (3-D chords for KD-trees), planar on projected ones;
- lon/lat ↔ grid x/y (through the CRS of a projected grid).

The Earth is the sphere of mean radius EARTH_RADIUS_KM: over the 1–100 km of a seamount it is
within 0.5 % of the ellipsoid, far inside what the grids resolve.

Layer 1, foundations: imports layer 1 only.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .errors import SeamountaeError

EARTH_RADIUS_KM = 6371.0
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180.0  # 111.195 km per degree of latitude
MIN_COS_LAT = 1e-3  # a pole's row still has a finite east-west scale (a degree of longitude ≥ 111 m)


def km_per_degree_lon(lat):
    """km per degree of longitude at latitude `lat` (degrees)."""
    return KM_PER_DEGREE * np.maximum(np.cos(np.radians(np.asarray(lat, float))), MIN_COS_LAT)


def unit_vectors(lon, lat) -> np.ndarray:
    """(n, 3) unit vectors of points given in degrees: KD-trees on them search by chord length."""
    lon, lat = np.radians(np.asarray(lon, float)), np.radians(np.asarray(lat, float))
    return np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])


def chord_km(arc_km):
    """The chord (straight through the Earth) of a great-circle arc of `arc_km`."""
    return 2 * EARTH_RADIUS_KM * np.sin(np.minimum(np.asarray(arc_km, float) / EARTH_RADIUS_KM, math.pi) / 2)


def arc_km(chord):
    """The great-circle arc of a chord of `chord` km (the inverse of chord_km)."""
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.clip(np.asarray(chord, float) / (2 * EARTH_RADIUS_KM), 0.0, 1.0))


def haversine_km(lon1, lat1, lon2, lat2):
    """Great-circle distance in km between points given in degrees."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=np.float64)) for v in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def longitude_near(lon, centre: float):
    """Longitudes moved by whole turns to within 180° of `centre`: −175 is 185 near 180."""
    lon = np.asarray(lon, float)
    return lon + 360.0 * np.round((centre - lon) / 360.0)


@functools.lru_cache(maxsize=16)
def metres_per_unit(crs_wkt: str) -> float:
    """Metres in one unit of a projected CRS's coordinates (a US survey foot is 0.3048006 m); 1 without a CRS."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    if not crs_wkt:
        return 1.0
    try:
        return float(CRS.from_wkt(crs_wkt).linear_units_factor[1])
    except (CRSError, ValueError):  # no linear unit to read: metres, as a grid without a CRS
        return 1.0


@dataclass(frozen=True)
class GridGeometry:
    """The geometry of a canonical grid: first cell centre, spacing and size along x and y."""

    x0: float
    dx: float
    nx: int
    y0: float
    dy: float
    ny: int
    geographic: bool
    crs: str = ""

    @staticmethod
    def of(grid) -> GridGeometry:
        """The geometry of a canonical grid, or of any dataset with its x/y coordinates and its
        `geographic` and `crs` attributes (a score or detections file); one object per grid."""
        x, y = grid["x"].values, grid["y"].values
        return _geometry(float(x[0]), float(x[-1]), x.size, float(y[0]), float(y[-1]), y.size,
                         bool(int(grid.attrs.get("geographic", 0))), str(grid.attrs.get("crs", "") or ""))

    # ----------------------------------------------------------------------------------- scale

    @property
    def unit_km(self) -> float:
        """km in one unit of a projected grid's coordinates."""
        return metres_per_unit(self.crs) / 1000.0

    def local_km(self, lat) -> tuple[float, np.ndarray]:
        """km per cell along y, and along x at each latitude of `lat` (the same everywhere on a
        projected grid): the local scale every distance on the grid uses."""
        lat = np.asarray(lat, float)
        if self.geographic:
            return self.dy * KM_PER_DEGREE, self.dx * km_per_degree_lon(lat)
        return self.dy * self.unit_km, np.full(lat.shape, self.dx * self.unit_km)

    def row_km(self, rows) -> tuple[float, np.ndarray]:
        """local_km at the latitude of grid rows `rows` (clipped to the grid)."""
        return self.local_km(self.y_of(np.clip(np.asarray(rows), 0, self.ny - 1)))

    def cell_size_km(self) -> tuple[float, float]:
        """(dy_km, dx_km), dx at the grid's central latitude."""
        dy_km, dx_km = self.local_km(self.y0 + self.dy * (self.ny - 1) / 2)
        return dy_km, float(dx_km)

    def cells_per_km(self, lat) -> tuple[np.ndarray, np.ndarray]:
        """Grid cells per km along y and x at latitude `lat`."""
        dy_km, dx_km = self.local_km(lat)
        return np.full(np.shape(dx_km), 1.0 / dy_km), 1.0 / dx_km

    # ------------------------------------------------------------------ coordinates and indices

    @property
    def wraps(self) -> bool:
        """True for a lon/lat grid that goes all the way round in longitude."""
        return self.geographic and self.nx * self.dx >= 360.0 - self.dx / 2

    def x_of(self, cols):
        return self.x0 + np.asarray(cols, float) * self.dx

    def y_of(self, rows):
        return self.y0 + np.asarray(rows, float) * self.dy

    def north_up_transform(self):
        """The rasterio Affine of the grid written north up (first row the northernmost), from the
        north-west corner of its first cell: what GeoTIFFs carry."""
        from rasterio.transform import Affine

        return Affine(self.dx, 0.0, self.x0 - self.dx / 2, 0.0, -self.dy, self.y_of(self.ny - 1) + self.dy / 2)

    def fractional_index(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of points in grid coordinates, as fractions of a cell (0 = first cell centre)."""
        return (np.asarray(y, float) - self.y0) / self.dy, (np.asarray(x, float) - self.x0) / self.dx

    def index(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of the cells whose centres are nearest to the points (may lie off the grid)."""
        row, col = self.fractional_index(x, y)
        return np.rint(row).astype(int), np.rint(col).astype(int)

    def moved(self, x, y, east_km, north_km) -> tuple[np.ndarray, np.ndarray]:
        """Points `east_km` east and `north_km` north of (x, y), at the local scale of y."""
        dy_km, dx_km = self.local_km(y)
        return (np.asarray(x, float) + np.asarray(east_km, float) / dx_km * self.dx,
                np.asarray(y, float) + np.asarray(north_km, float) / dy_km * self.dy)

    def grid_longitude(self, lon):
        """Longitudes in the grid's own convention: −175 is 185 on a grid spanning 170°–190°."""
        return longitude_near(lon, self.x0 + self.dx * (self.nx - 1) / 2)

    def from_lonlat(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """WGS84 lon/lat → the grid's x/y (longitudes in its convention; reprojected on a projected grid)."""
        lon, lat = np.asarray(lon, float), np.asarray(lat, float)
        if self.geographic:
            return self.grid_longitude(lon), lat
        if not lon.size:
            return lon, lat
        from rasterio.crs import CRS
        from rasterio.warp import transform

        x, y = transform(CRS.from_epsg(4326), CRS.from_wkt(self.crs), lon.ravel().tolist(), lat.ravel().tolist())
        return np.asarray(x, float).reshape(lon.shape), np.asarray(y, float).reshape(lat.shape)

    def to_lonlat(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        """The grid's x/y → WGS84 lon/lat (as they are on a lon/lat grid)."""
        x, y = np.asarray(x, float), np.asarray(y, float)
        if self.geographic or not x.size:
            return x, y
        from rasterio.crs import CRS
        from rasterio.warp import transform

        lon, lat = transform(CRS.from_wkt(self.crs), CRS.from_epsg(4326), x.ravel().tolist(), y.ravel().tolist())
        return np.asarray(lon, float).reshape(x.shape), np.asarray(lat, float).reshape(y.shape)

    def lonlat_bounds(self) -> tuple[float, float, float, float]:
        """(west, east, south, north) in degrees of the grid's cells, edges included: GMT's -R order.
        East may pass 180 on a grid across the antimeridian; a projected grid's box holds its corners."""
        xs = self.x0 - self.dx / 2, self.x_of(self.nx - 1) + self.dx / 2
        ys = self.y0 - self.dy / 2, self.y_of(self.ny - 1) + self.dy / 2
        if self.geographic:
            return float(xs[0]), float(xs[1]), max(float(ys[0]), -90.0), min(float(ys[1]), 90.0)
        lon, lat = self.to_lonlat(np.repeat(xs, 2), np.tile(ys, 2))
        return float(lon.min()), float(lon.max()), float(lat.min()), float(lat.max())

    # ---------------------------------------------------------------------------------- distances

    def points_km(self, x, y) -> np.ndarray:
        """(n, 3) or (n, 2) points in km whose straight distances are the grid's: chords of the
        sphere on a lon/lat grid (within 0.01 % of the great circle below 100 km), the plane on a
        projected one."""
        if self.geographic:
            return EARTH_RADIUS_KM * unit_vectors(x, y)
        return np.column_stack([np.asarray(x, float), np.asarray(y, float)]) * self.unit_km

    def nearest_km(self, x, y, x_ref, y_ref) -> tuple[np.ndarray, np.ndarray]:
        """For each point (x, y): the distance in km to the nearest of the points (x_ref, y_ref) and
        that point's index (inf and -1 where there is none)."""
        from scipy.spatial import cKDTree

        query = self.points_km(x, y)
        if not len(np.atleast_1d(x_ref)) or not len(query):
            return np.full(len(query), np.inf), np.full(len(query), -1)
        distance, index = cKDTree(self.points_km(x_ref, y_ref)).query(query)
        return (arc_km(distance) if self.geographic else distance), index


@functools.lru_cache(maxsize=64)
def _geometry(x_first: float, x_last: float, nx: int, y_first: float, y_last: float, ny: int, geographic: bool,
              crs: str) -> GridGeometry:
    # A canonical grid's coordinates are exactly regular (grid._ascending): the spacing is the mean step.
    dx = (x_last - x_first) / (nx - 1) if nx > 1 else 1.0
    dy = (y_last - y_first) / (ny - 1) if ny > 1 else 1.0
    return GridGeometry(x_first, dx, nx, y_first, dy, ny, geographic, crs)


def parse_region(text) -> tuple[float, float, float, float]:
    """--region W/E/S/N (GMT's -R order, degrees), or a config's [lon_min, lon_max, lat_min, lat_max],
    as (west, east, south, north); east may pass 180 or be less than west: the box then crosses the
    antimeridian."""
    try:
        west, east, south, north = (float(v) for v in (text if isinstance(text, (list, tuple)) else str(text).split("/")))
    except (ValueError, TypeError):
        raise SeamountaeError(f"--region {text!r}: give W/E/S/N in degrees, GMT's -R order (e.g. 166/169/8/10)") from None
    if not (-90 <= south < north <= 90) or not all(math.isfinite(v) for v in (west, east)):
        raise SeamountaeError(f"--region {text!r}: south must be below north, both within -90..90; give W/E/S/N")
    return west, east, south, north


def in_region(lon, lat, region) -> np.ndarray:
    """Which points lie in the box (west, east, south, north), edges included, across ±180 as needed."""
    west, east, south, north = region
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    span = east - west if east > west else east - west + 360.0
    with np.errstate(invalid="ignore"):
        along = np.isfinite(lon) if span >= 360.0 else np.mod(lon - west, 360.0) <= span
        return along & (lat >= south) & (lat <= north)
