"""Synthetic bathymetry with planted seamounts (known truth) and realistic confounders.

A detector trained and judged on clean bumps over flat seafloor looks better than it is, so the
backgrounds here carry the terrain that fools seamount detectors on real grids: elongated abyssal
hills, a rifted spreading axis, fracture-zone scarps, volcanic ridges, trenches, islands and data
gaps. Every part draws from its own random stream keyed by (seed, part), so switching one
confounder on or off leaves all the others as they were: a benchmark can compare the same
seafloor with and without any one of them.

Seamount shapes follow GMT grdseamount (Gaussian, cone, polynomial, parabolic; elliptical with an
azimuth; flattened tops), plus summit craters and overlapping chains. Sizes follow the observed
height-to-radius ratio of seamounts, h/r ~ 0.21 +- 0.08 (Smith 1988).

Layer 5, stages: imports layers 1-5 only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import xarray as xr
from rasterio.crs import CRS
from scipy import fft

from .errors import SeamountaeError
from .geometry import KM_PER_DEGREE, km_per_degree_lon


SHAPES = ("gaussian", "cone", "polynomial", "parabolic", "guyot", "crater")
CONFOUNDERS = ("fabric", "ridge", "fracture_zone", "volcanic_ridge", "trench", "gaps", "land")
_RIDGE_FLANK = ("fabric", "ridge", "fracture_zone", "volcanic_ridge")
# "gaps" is resolved per seed to a plain or ridge-flank background; see _confounders_for.
SCENARIOS = ("plain", "fabric", "gaps", "empty", "ridges", "island", "trench")
TRUTH_COLUMNS = ("lon", "lat", "height_m", "radius_km", "shape", "azimuth_deg", "ellipticity", "flattening", "chain")

MIN_HEIGHT_M, MAX_HEIGHT_M = 300.0, 4000.0
HR_MEAN, HR_SD, HR_MIN, HR_MAX = 0.21, 0.08, 0.08, 0.4  # height km / basal radius km
KM2_PER_SEAMOUNT = 12_500.0  # ~28 seamounts on the default 300 x 400 one-minute grid
SUMMIT_CEILING_M = -200.0  # planted seamounts stay this deep outside land scenes
BACKGROUND_CEILING_M = -500.0  # so every seamount has room for at least MIN_HEIGHT_M
CRATER_DEPTH = 0.15  # summit pit depth as a fraction of the seamount's height

# One random stream per part (index = position), so parts stay independent of each other.
_PARTS = ("scene", "base", *CONFOUNDERS, "seamounts")


def _rng(seed: int, part: str) -> np.random.Generator:
    return np.random.default_rng([seed, _PARTS.index(part)])


# --------------------------------------------------------------------------- seamount shapes


def _cone(rho):
    return 1.0 - rho


def _gaussian(rho):
    # GMT's Gaussian falls to exp(-4.5) ~ 1 % at the basal radius; shift it to reach exactly 0 there.
    tail = math.exp(-4.5)
    return (np.exp(-4.5 * rho**2) - tail) / (1.0 - tail)


def _parabolic(rho):
    return 1.0 - rho**2


def _polynomial(rho):
    # Cubic with zero slope at summit and base: a smooth dome without the Gaussian's long skirt.
    return 1.0 - 3.0 * rho**2 + 2.0 * rho**3


_PROFILES = {"gaussian": _gaussian, "cone": _cone, "polynomial": _polynomial, "parabolic": _parabolic,
             "guyot": _cone, "crater": _cone}


def render_seamount(xx_km, yy_km, height_m: float, radius_km: float, shape: str = "gaussian",
                    azimuth_deg: float = 0.0, ellipticity: float = 0.0, flattening: float = 0.0) -> np.ndarray:
    """Relief in metres of one seamount whose summit centre is at (0, 0), zero beyond its base.

    xx_km, yy_km: east and north offsets (km) of the cells from the centre, broadcastable arrays.
    radius_km: basal radius; for an ellipse the equivalent-area radius sqrt(a * b).
    azimuth_deg: direction of the long axis, clockwise from north.
    ellipticity: 1 - minor/major axis (0 = circular).
    flattening: summit radius / basal radius (GMT -F): the flat top of a guyot, the rim of a crater's
    pit; it truncates any other shape the same way. Guyot and crater need it > 0.
    The summit (or crater rim) reaches height_m.
    """
    if shape not in _PROFILES:
        raise ValueError(f"unknown seamount shape {shape!r}; expected one of {SHAPES}")
    if not (0.0 <= ellipticity < 1.0 and 0.0 <= flattening < 1.0):
        raise ValueError("ellipticity and flattening must lie in [0, 1)")
    if shape in ("guyot", "crater") and flattening <= 0.0:
        raise ValueError(f"a {shape} needs flattening > 0 (its summit radius / basal radius)")
    az = math.radians(azimuth_deg)
    xx, yy = np.asarray(xx_km, dtype=float), np.asarray(yy_km, dtype=float)
    along = xx * math.sin(az) + yy * math.cos(az)
    across = xx * math.cos(az) - yy * math.sin(az)
    squash = math.sqrt(1.0 - ellipticity)
    rho = np.hypot(along / (radius_km / squash), across / (radius_km * squash))
    profile = _PROFILES[shape]
    g = profile(np.minimum(rho, 1.0))
    if flattening > 0.0:
        top = profile(flattening)
        g = np.minimum(g, top) / top
    if shape == "crater":
        pit = rho < flattening
        g = np.where(pit, 1.0 - CRATER_DEPTH * (1.0 - (rho / flattening) ** 2), g)
    return height_m * g


# --------------------------------------------------------------------------- grid geometry


@dataclass(frozen=True)
class _Frame:
    """Cell coordinates: lon/lat vectors and a flat local km frame centred on the grid."""

    lon: np.ndarray
    lat: np.ndarray
    dx_km: float  # cell width at the central latitude
    dy_km: float
    x_km: np.ndarray  # shape (1, nx): east of the centre
    y_km: np.ndarray  # shape (ny, 1): north of the centre

    @property
    def shape(self) -> tuple[int, int]:
        return self.lat.size, self.lon.size

    @property
    def extent_km(self) -> float:
        """The shorter side, which bounds where linear features may cross the grid."""
        return min(self.lat.size * self.dy_km, self.lon.size * self.dx_km)

    def window(self, lon0: float, lat0: float, half_km: float):
        """Rows, columns and local east/north km offsets of the cells within half_km of a point."""
        kx = km_per_degree_lon(lat0)
        r0, r1 = np.searchsorted(self.lat, [lat0 - half_km / KM_PER_DEGREE, lat0 + half_km / KM_PER_DEGREE])
        c0, c1 = np.searchsorted(self.lon, [lon0 - half_km / kx, lon0 + half_km / kx])
        rows, cols = slice(r0, r1), slice(c0, c1)
        return rows, cols, (self.lon[cols] - lon0)[None, :] * kx, (self.lat[rows] - lat0)[:, None] * KM_PER_DEGREE

    def random_point(self, rng: np.random.Generator, margin_km: float) -> tuple[float, float]:
        """A lon/lat at least margin_km inside every edge (NaN, NaN if the grid is too small)."""
        dlat = margin_km / KM_PER_DEGREE
        lat_lo, lat_hi = self.lat[0] + dlat, self.lat[-1] - dlat
        lat = rng.uniform(lat_lo, lat_hi)
        dlon = margin_km / km_per_degree_lon(lat)
        lon_lo, lon_hi = self.lon[0] + dlon, self.lon[-1] - dlon
        if lat_lo >= lat_hi or lon_lo >= lon_hi:
            return math.nan, math.nan
        return rng.uniform(lon_lo, lon_hi), lat

    def inside(self, lon: float, lat: float, margin_km: float) -> bool:
        kx = km_per_degree_lon(lat)
        return (self.lat[0] + margin_km / KM_PER_DEGREE <= lat <= self.lat[-1] - margin_km / KM_PER_DEGREE
                and self.lon[0] + margin_km / kx <= lon <= self.lon[-1] - margin_km / kx)


def _frame(shape: tuple[int, int], spacing_arcmin: float, origin: tuple[float, float]) -> _Frame:
    ny, nx = shape
    step = spacing_arcmin / 60.0
    lon = origin[0] + step * np.arange(nx)
    lat = origin[1] + step * np.arange(ny)
    lon_c, lat_c = lon.mean(), lat.mean()
    kx = km_per_degree_lon(lat_c)
    return _Frame(lon, lat, step * kx, step * KM_PER_DEGREE, ((lon - lon_c) * kx)[None, :],
                  ((lat - lat_c) * KM_PER_DEGREE)[:, None])


@dataclass(frozen=True)
class _Scene:
    """Geometry shared by the structural confounders, so they line up as on a real ridge flank."""

    azimuth_deg: float  # strike of ridge axis, abyssal hills and trench
    axis_km: float  # ridge axis offset across strike from the grid centre
    fz_km: float  # fracture zone position along strike (it runs across strike)
    fz_offset_km: float  # ridge-axis offset across the fracture zone
    trench_km: float  # trench axis offset across strike
    trench_side: float  # +1 or -1: which side of the trench is the subducting plate

    def along_across(self, frame: _Frame):
        az = math.radians(self.azimuth_deg)
        return (frame.x_km * math.sin(az) + frame.y_km * math.cos(az),
                frame.x_km * math.cos(az) - frame.y_km * math.sin(az))


def _scene(rng: np.random.Generator, frame: _Frame, azimuth_deg: float | None) -> _Scene:
    span = frame.extent_km
    scene = _Scene(rng.uniform(0.0, 180.0), rng.uniform(-0.2, 0.2) * span, rng.uniform(-0.25, 0.25) * span,
                   rng.choice([-1.0, 1.0]) * rng.uniform(20.0, 60.0), rng.uniform(-0.25, 0.25) * span,
                   rng.choice([-1.0, 1.0]))
    # The azimuth is drawn even when given, so the rest of the scene does not depend on the choice.
    return scene if azimuth_deg is None else replace(scene, azimuth_deg=float(azimuth_deg))


# --------------------------------------------------------------------------- background terrain


def _noise(rng: np.random.Generator, frame: _Frame, width_km: float, aspect: float = 1.0,
           azimuth_deg: float = 0.0, hurst: float = 0.8) -> np.ndarray:
    """Unit-RMS von Karman random field, the Goff & Jordan (1988) model of abyssal-hill relief.

    width_km is the correlation length across azimuth_deg, aspect times longer along it; a higher
    hurst exponent gives a smoother field (0.8 is rugged). Shaped in the Fourier domain on a
    padded grid, so any orientation costs the same and the field does not wrap around the edges.
    """
    ny, nx = frame.shape
    reach = 2.0 * width_km * max(aspect, 1.0)
    py = fft.next_fast_len(ny + min(ny, math.ceil(reach / frame.dy_km)), real=True)
    px = fft.next_fast_len(nx + min(nx, math.ceil(reach / frame.dx_km)), real=True)
    ky = 2.0 * np.pi * fft.fftfreq(py, frame.dy_km)[:, None]
    kx = 2.0 * np.pi * fft.rfftfreq(px, frame.dx_km)[None, :]
    az = math.radians(azimuth_deg)
    k_along = kx * math.sin(az) + ky * math.cos(az)
    k_across = kx * math.cos(az) - ky * math.sin(az)
    gain = (1.0 + (k_along * width_km * aspect) ** 2 + (k_across * width_km) ** 2) ** (-(hurst + 1.0) / 2.0)
    field = fft.irfft2(fft.rfft2(rng.standard_normal((py, px))) * gain, s=(py, px))[:ny, :nx]
    field -= field.mean()
    return field / field.std()


def _base(rng: np.random.Generator, frame: _Frame) -> np.ndarray:
    """Abyssal seafloor: regional depth and slope, long-wavelength swells, mild roughness."""
    depth = rng.uniform(-4800.0, -4200.0)
    slope = rng.uniform(0.2, 1.5)  # m/km
    down = rng.uniform(0.0, 2.0 * np.pi)
    z = depth + slope * (frame.x_km * math.sin(down) + frame.y_km * math.cos(down))
    z = z + rng.uniform(80.0, 200.0) * _noise(rng, frame, rng.uniform(40.0, 100.0), hurst=1.0)
    return z + rng.uniform(20.0, 40.0) * _noise(rng, frame, rng.uniform(1.5, 4.0))


def _fabric(rng: np.random.Generator, frame: _Frame, scene: _Scene, offset_by_fz: bool) -> np.ndarray:
    """Abyssal hills: fault-block relief elongated 3-5:1 along the ridge strike."""
    width, aspect, rms = rng.uniform(3.0, 7.0), rng.uniform(3.0, 5.0), rng.uniform(80.0, 220.0)
    hills = _noise(rng, frame, width, aspect, scene.azimuth_deg, hurst=1.0)
    if offset_by_fz:
        # Crust on the far side of a fracture zone formed at another ridge segment: its hills do not line up.
        along, _ = scene.along_across(frame)
        hills = np.where(along < scene.fz_km, _noise(rng, frame, width, aspect, scene.azimuth_deg, hurst=1.0), hills)
    return rms * hills


def _ridge(rng: np.random.Generator, frame: _Frame, scene: _Scene, offset_by_fz: bool) -> np.ndarray:
    """Slow-spreading ridge: young shallow crust subsiding with sqrt(age), split by a rift valley."""
    uplift, subsidence = rng.uniform(1200.0, 1800.0), rng.uniform(60.0, 100.0)  # m, m/sqrt(km)
    rift_depth, rift_width = rng.uniform(1100.0, 1600.0), rng.uniform(10.0, 20.0)  # m, km
    along, across = scene.along_across(frame)
    # A fracture zone is a transform offset: the ridge segment beyond it is shifted across strike.
    axis = scene.axis_km + (np.where(along < scene.fz_km, scene.fz_offset_km, 0.0) if offset_by_fz else 0.0)
    d = np.abs(across - axis)
    # A fourth-power profile gives the flat floor and steep fault walls of a real rift valley.
    return np.maximum(uplift - subsidence * np.sqrt(d), 0.0) - rift_depth * np.exp(-((2.0 * d / rift_width) ** 4))


def _fracture_zone(rng: np.random.Generator, frame: _Frame, scene: _Scene) -> np.ndarray:
    """A scarp across strike (crust of different age on either side) with a trough along it."""
    step = rng.choice([-1.0, 1.0]) * rng.uniform(1000.0, 2000.0)
    scarp_km, trough_m, trough_km = rng.uniform(2.0, 5.0), rng.uniform(300.0, 800.0), rng.uniform(3.0, 8.0)
    along, _ = scene.along_across(frame)
    t = along - scene.fz_km
    return 0.5 * step * np.tanh(t / scarp_km) - trough_m * np.exp(-((t / trough_km) ** 2))


def _volcanic_ridges(rng: np.random.Generator, frame: _Frame, km2_per_ridge: float = 80_000.0,
                     height_m: tuple[float, float] = (300.0, 1500.0)) -> np.ndarray:
    """Elongated (5-10:1) volcanic ridges of en-echelon segments, like the Azores' Terceira rift."""
    ny, nx = frame.shape
    layer = np.zeros(frame.shape)
    for _ in range(max(1, rng.poisson(ny * nx * frame.dx_km * frame.dy_km / km2_per_ridge))):  # ~4 on the default grid
        lon, lat = frame.random_point(rng, 0.0)
        length, height, aspect = rng.uniform(25.0, 80.0), rng.uniform(*height_m), rng.uniform(5.0, 10.0)
        azimuth, shape, n_seg = rng.uniform(0.0, 180.0), rng.choice(["gaussian", "polynomial"]), rng.integers(1, 4)
        heights = height * rng.uniform(0.6, 1.0, n_seg)
        heights[rng.integers(n_seg)] = height
        semi_major = 0.5 * length / n_seg * rng.uniform(1.2, 1.6)  # segments overlap end to end
        kx, az = km_per_degree_lon(lat), math.radians(azimuth)
        for k in range(n_seg):
            s = (k - (n_seg - 1) / 2.0) * length / n_seg
            jog = rng.uniform(-1.0, 1.0) * semi_major / aspect
            east, north = s * math.sin(az) + jog * math.cos(az), s * math.cos(az) - jog * math.sin(az)
            rows, cols, dx, dy = frame.window(lon + east / kx, lat + north / KM_PER_DEGREE, semi_major)
            seg = render_seamount(dx, dy, heights[k], semi_major / math.sqrt(aspect), shape,
                                  azimuth + rng.uniform(-10.0, 10.0), 1.0 - 1.0 / aspect)
            # Segments merge rather than stack: a ridge crest is not higher where segments overlap.
            layer[rows, cols] = np.maximum(layer[rows, cols], seg)
    return layer


def _trench(rng: np.random.Generator, frame: _Frame, scene: _Scene) -> np.ndarray:
    """Subduction trench along strike: flexural outer rise on the ocean side, steep inner wall to a forearc."""
    depth, flexure_km = rng.uniform(2000.0, 3500.0), rng.uniform(15.0, 30.0)
    forearc, wall_km = rng.uniform(500.0, 1500.0), rng.uniform(15.0, 30.0)
    _, across = scene.along_across(frame)
    x = (across - scene.trench_km) * scene.trench_side  # > 0 on the subducting plate
    ocean = np.maximum(x, 0.0) / flexure_km
    arc = np.minimum(x, 0.0) / wall_km
    # Broken-elastic-plate deflection w0 exp(-x/a) cos(x/a): the outer rise bulges ~7 % of the trench depth.
    return np.where(x >= 0.0, -depth * np.exp(-ocean) * np.cos(ocean), -depth + (depth + forearc) * (1.0 - np.exp(arc)))


def _island(rng: np.random.Generator, frame: _Frame, z: np.ndarray) -> tuple[float, float, float]:
    """Add a volcanic island edifice to z in place; return its centre and semi-major axis (km)."""
    radius = min(rng.uniform(25.0, 45.0), 0.3 * frame.extent_km)
    ellipticity, azimuth = rng.uniform(0.0, 0.4), rng.uniform(0.0, 180.0)
    semi_major = radius / math.sqrt(1.0 - ellipticity)
    lon, lat = frame.random_point(rng, semi_major)
    rows, cols, dx, dy = frame.window(lon, lat, semi_major)
    seafloor = z[np.searchsorted(frame.lat, lat), np.searchsorted(frame.lon, lon)]
    height = rng.uniform(1000.0, 2500.0) - seafloor  # before the shelf cut lowers the land
    # A broad parabolic dome, so a sizeable area emerges as land.
    z[rows, cols] += render_seamount(dx, dy, height, radius, "parabolic", azimuth, ellipticity)
    return lon, lat, semi_major


def _shelf(rng: np.random.Generator, z: np.ndarray) -> np.ndarray:
    """Wave-cut insular shelf: compress the edifice's upper slope into a gently sloping platform.

    Raw relief between the shelf break and `band` above it becomes the shelf (break depth to sea
    level); higher ground is land. Only island cells reach the break, the rest lies deeper than
    BACKGROUND_CEILING_M and SUMMIT_CEILING_M.
    """
    brk, band = -rng.uniform(100.0, 200.0), rng.uniform(300.0, 800.0)
    shelf = brk * (1.0 - (z - brk) / band)
    return np.where(z <= brk, z, np.where(z <= brk + band, shelf, z - brk - band))


# --------------------------------------------------------------------------- seamounts


def _draw_heights(rng: np.random.Generator, n: int, max_height_m: float = MAX_HEIGHT_M) -> np.ndarray:
    """Heights with density ~ h**-1.5 on [300, 4000] m: small seamounts dominate (median ~ 740 m)."""
    lo, hi = MIN_HEIGHT_M**-0.5, max_height_m**-0.5
    return (lo - rng.uniform(size=n) * (lo - hi)) ** -2.0


def _draw_units(rng: np.random.Generator, n: int, max_height_m: float = MAX_HEIGHT_M) -> list[pd.DataFrame]:
    """n seamounts' parameters grouped into placement units: single seamounts and chains of 2-5."""
    sizes = []
    while sum(sizes) < n:
        sizes.append(min(int(rng.integers(2, 6)) if rng.random() < 0.15 else 1, n - sum(sizes)))
    heights = _draw_heights(rng, n, max_height_m)
    ratio = np.clip(rng.normal(HR_MEAN, HR_SD, n), HR_MIN, HR_MAX)
    shape = rng.choice(SHAPES, n)
    flattening = np.select([shape == "guyot", shape == "crater"],
                           [rng.uniform(0.2, 0.6, n), rng.uniform(0.15, 0.3, n)], 0.0)
    ellipticity = np.where(rng.random(n) < 0.4, rng.uniform(0.1, 0.5, n), 0.0)
    azimuth = np.where(ellipticity > 0.0, rng.uniform(0.0, 180.0, n), 0.0)
    members = pd.DataFrame({"height_m": heights, "ratio": ratio, "shape": shape, "azimuth_deg": azimuth,
                            "ellipticity": ellipticity, "flattening": flattening})
    members["radius_km"] = members.height_m / 1000.0 / members.ratio
    ends = np.cumsum(sizes)
    units = [members.iloc[end - size:end] for size, end in zip(sizes, ends)]
    # Largest first: big seamounts are the hardest to fit, and smaller ones then settle on their flanks.
    return sorted(units, key=lambda u: -u.height_m.max())


def _semi_major(radius_km, ellipticity):
    return radius_km / np.sqrt(1.0 - ellipticity)


def _place(rng: np.random.Generator, frame: _Frame, unit: pd.DataFrame, taken: list[tuple[float, float, float]],
           spacing: float = 0.7):
    """Centres (lon, lat arrays) and trend (deg) for a unit, or None: inside the grid, apart from taken
    discs (centres at least `spacing` times the sum of the radii apart; seamounts may overlap a little)."""
    reach = _semi_major(unit.radius_km.to_numpy(), unit.ellipticity.to_numpy())
    radius = unit.radius_km.to_numpy()
    taken_arr = np.array(taken).reshape(-1, 3)
    for _ in range(200):
        lon0, lat0 = frame.random_point(rng, reach[0])
        if np.isnan(lon0):
            return None
        trend = math.radians(rng.uniform(0.0, 360.0))
        # Chain members overlap: consecutive centres closer than the sum of their radii.
        steps = np.concatenate([[0.0], np.cumsum(rng.uniform(0.5, 0.9, len(unit) - 1) * (radius[:-1] + radius[1:]))])
        lat = lat0 + steps * math.cos(trend) / KM_PER_DEGREE
        lon = lon0 + steps * math.sin(trend) / km_per_degree_lon(lat)
        if not all(frame.inside(lo, la, r) for lo, la, r in zip(lon, lat, reach)):
            continue
        kx = km_per_degree_lon(0.5 * (lat[:, None] + taken_arr[None, :, 1]))
        gap = np.hypot((lon[:, None] - taken_arr[None, :, 0]) * kx, (lat[:, None] - taken_arr[None, :, 1]) * KM_PER_DEGREE)
        if np.all(gap >= spacing * (radius[:, None] + taken_arr[None, :, 2])):
            return lon, lat, math.degrees(trend) % 180.0
    return None


def _plant_seamounts(rng: np.random.Generator, frame: _Frame, z: np.ndarray, n: int,
                     taken: list[tuple[float, float, float]], max_height_m: float = MAX_HEIGHT_M) -> pd.DataFrame:
    """Add n seamounts (fewer if the grid cannot hold them) to z in place; return the truth table.

    `taken` holds discs (lon, lat, radius km) already occupied, e.g. by an island. A seamount whose
    footprint would cover a missing cell (land, a gap) is not planted.
    """
    rows_out = []
    n_chains = 0
    for unit in _draw_units(rng, n, max_height_m):
        spot = _place(rng, frame, unit, taken)
        if spot is None:
            continue
        lons, lats, trend = spot
        # Reserve the space even if capping below drops a member, so positions do not depend on the terrain.
        taken.extend(zip(lons, lats, unit.radius_km))
        chain = -1
        if len(unit) > 1:
            chain, n_chains = n_chains, n_chains + 1
        for lon, lat, m in zip(lons, lats, unit.itertuples()):
            # Elongated chain members line up with the chain, as along a volcanic lineament.
            azimuth = trend if chain >= 0 and m.ellipticity > 0 else m.azimuth_deg
            height, radius = m.height_m, m.radius_km
            rows, cols, dx, dy = frame.window(lon, lat, _semi_major(radius, m.ellipticity))
            g = render_seamount(dx, dy, 1.0, radius, m.shape, azimuth, m.ellipticity, m.flattening)
            if not np.any(g > 0.0) or np.isnan(z[rows, cols][g > 0.0]).any():
                continue  # falls between grid nodes (nothing would be planted), or onto missing cells
            # Keep the summit below SUMMIT_CEILING_M wherever it sits on the surface; near land there is no room.
            room = SUMMIT_CEILING_M - z[rows, cols][g > 0.0].max()
            if height > room:
                height, radius = room, room / 1000.0 / m.ratio
                if height < MIN_HEIGHT_M:
                    continue
                g = render_seamount(dx, dy, 1.0, radius, m.shape, azimuth, m.ellipticity, m.flattening)
            z[rows, cols] += height * g
            rows_out.append((lon, lat, height, radius, m.shape, azimuth, m.ellipticity, m.flattening, chain))
    truth = pd.DataFrame(rows_out, columns=list(TRUTH_COLUMNS))
    return truth.astype({"shape": str, "chain": int})


# --------------------------------------------------------------------------- data gaps


def _gaps(rng: np.random.Generator, frame: _Frame, truth: pd.DataFrame) -> np.ndarray:
    """Nodata mask covering 6-14 % of cells: flank gaps on some seamounts, ship-track stripes, blobs."""
    mask = np.zeros(frame.shape, dtype=bool)
    target = int(rng.uniform(0.06, 0.14) * mask.size)
    # Seamounts surveyed only in part: a gap on the flank, never over the summit.
    resolved = truth[truth.radius_km >= 3.0 * frame.dy_km]
    for m in resolved.iloc[rng.permutation(len(resolved))[: math.ceil(0.25 * len(resolved))]].itertuples():
        bearing, dist, size = rng.uniform(0.0, 2.0 * np.pi), rng.uniform(0.8, 1.1), rng.uniform(0.4, 0.7)
        rows, cols, dx, dy = frame.window(m.lon, m.lat, (dist + size) * m.radius_km)
        dx, dy = dx - dist * m.radius_km * math.sin(bearing), dy - dist * m.radius_km * math.cos(bearing)
        mask[rows, cols] |= np.hypot(dx, dy) < size * m.radius_km
    # Unsurveyed strips between ship tracks: long, meandering, a few km wide.
    for _ in range(4):
        az = rng.uniform(0.0, np.pi)
        x0, y0 = rng.uniform(-0.5, 0.5, 2) * frame.extent_km
        s = (frame.x_km - x0) * math.sin(az) + (frame.y_km - y0) * math.cos(az)
        t = (frame.x_km - x0) * math.cos(az) - (frame.y_km - y0) * math.sin(az)
        wander = rng.uniform(0.0, 8.0) * np.sin(2.0 * np.pi * s / rng.uniform(80.0, 300.0) + rng.uniform(0.0, 2.0 * np.pi))
        stripe = (np.abs(t - wander) < rng.uniform(1.5, 5.0)) & (np.abs(s) < rng.uniform(0.3, 1.0) * frame.extent_km)
        if np.count_nonzero(mask | stripe) <= 0.7 * target:
            mask |= stripe
    # Irregular blobs fill the rest exactly: the highest cells of a smooth random field.
    missing = target - np.count_nonzero(mask)
    if missing > 0:
        field = _noise(rng, frame, rng.uniform(10.0, 25.0), hurst=3.0)  # smooth: compact holes
        field[mask] = -np.inf
        mask.flat[np.argpartition(field.ravel(), -missing)[-missing:]] = True
    return mask


# --------------------------------------------------------------------------- public API


def _canonical(values: np.ndarray, frame: _Frame, source: str) -> xr.DataArray:
    """The project's canonical grid (see grid.canonical_grid): float32 metres, land (> 0) as NaN."""
    z = values.astype(np.float32)
    z[z > 0.0] = np.nan
    return xr.DataArray(z, dims=("y", "x"), coords={"y": frame.lat, "x": frame.lon}, name="elevation",
                        attrs={"units": "m", "geographic": 1, "crs": CRS.from_epsg(4326).to_wkt(), "source": source})


def _confounders_for(scenario: str, rng: np.random.Generator) -> tuple[str, ...]:
    if scenario in ("fabric", "empty"):
        return _RIDGE_FLANK
    if scenario == "ridges":
        return ("fabric", "ridge", "volcanic_ridge")
    if scenario == "gaps":
        return (_RIDGE_FLANK if rng.random() < 0.5 else ()) + ("gaps",)
    return {"plain": (), "island": ("land",), "trench": ("fabric", "trench")}[scenario]


def synthesize(seed: int = 0, scenario: str = "plain", n_seamounts: int | None = None,
               shape: tuple[int, int] = (300, 400), spacing_arcmin: float = 1.0,
               origin: tuple[float, float] = (-30.0, 30.0), confounders: Iterable[str] | None = None,
               ridge_azimuth_deg: float | None = None) -> tuple[xr.DataArray, pd.DataFrame]:
    """A synthetic geographic bathymetry grid with planted seamounts, and its truth table.

    scenario: one of SCENARIOS; it picks the default confounders ("empty" plants no seamounts).
    n_seamounts: how many to plant (default one per 12,500 km2); fewer when the grid cannot hold them.
    shape: (rows, columns); spacing_arcmin: cell size; origin: lon, lat of the south-west node.
    confounders: any of CONFOUNDERS, replacing the scenario's set.
    ridge_azimuth_deg: strike of ridge, abyssal hills and trench, degrees from north (default: drawn).

    The truth table has one row per seamount: lon, lat (summit centre), height_m (planted relief),
    radius_km (basal, equivalent-area), shape, azimuth_deg, ellipticity, flattening (summit radius /
    basal radius for guyots and craters), chain (index of its overlapping chain, -1 if alone).
    The same seed gives the same grid. Each part draws from its own stream, so adding or removing a
    confounder leaves the other parts unchanged and the seamounts where they were (except around an
    island, which displaces them); only their heights may be capped differently.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise SeamountaeError(f"seed {seed!r}: must be a non-negative integer; pass e.g. --seed 0")
    if scenario not in SCENARIOS:
        raise SeamountaeError(f"scenario {scenario!r}: unknown; choose one of {', '.join(SCENARIOS)}")
    if scenario in ("empty", "ridges") and n_seamounts:
        raise SeamountaeError(f"scenario {scenario!r} plants no seamounts; drop the seamount count or pick another scenario")
    if n_seamounts is not None and n_seamounts < 0:
        raise SeamountaeError(f"seamount count {n_seamounts}: must be 0 or more")
    ny, nx = shape
    top_lat = origin[1] + (ny - 1) * spacing_arcmin / 60.0
    if ny < 16 or nx < 16 or spacing_arcmin <= 0 or origin[1] < -85.0 or top_lat > 85.0:
        raise SeamountaeError(f"grid {ny}x{nx} at {spacing_arcmin}' from latitude {origin[1]}: needs at least "
                              "16x16 cells, a positive spacing and to stay within 85 degrees of the equator")
    if confounders is not None and set(confounders) - set(CONFOUNDERS):
        raise SeamountaeError(f"confounders {sorted(set(confounders) - set(CONFOUNDERS))}: unknown; "
                              f"choose from {', '.join(CONFOUNDERS)}")

    frame = _frame(shape, spacing_arcmin, origin)
    scene_rng = _rng(seed, "scene")
    scene = _scene(scene_rng, frame, ridge_azimuth_deg)
    active = tuple(confounders) if confounders is not None else _confounders_for(scenario, scene_rng)
    with_fz = "fracture_zone" in active

    z = _base(_rng(seed, "base"), frame)
    if "fabric" in active:
        z += _fabric(_rng(seed, "fabric"), frame, scene, with_fz)
    if "ridge" in active:
        z += _ridge(_rng(seed, "ridge"), frame, scene, with_fz)
    if with_fz:
        z += _fracture_zone(_rng(seed, "fracture_zone"), frame, scene)
    if "volcanic_ridge" in active:
        # The ridges scenario: twice as many volcanic ridges, as tall as mid-sized seamounts.
        dense = {"km2_per_ridge": 40_000.0, "height_m": (900.0, 1600.0)} if scenario == "ridges" else {}
        z += _volcanic_ridges(_rng(seed, "volcanic_ridge"), frame, **dense)
    if "trench" in active:
        z += _trench(_rng(seed, "trench"), frame, scene)
    # Stacked confounders can pile up shallow; lower the whole scene so only planted land breaches
    # sea level and every seamount has room below the summit ceiling.
    z -= max(0.0, z.max() - BACKGROUND_CEILING_M)

    taken = []
    if "land" in active:
        land_rng = _rng(seed, "land")
        taken.append(_island(land_rng, frame, z))
    if n_seamounts is None:
        n_seamounts = 0 if scenario in ("empty", "ridges") else round(z.size * frame.dx_km * frame.dy_km / KM2_PER_SEAMOUNT)
    truth = _plant_seamounts(_rng(seed, "seamounts"), frame, z, n_seamounts, taken)
    if "land" in active:
        z = _shelf(land_rng, z)
    if "gaps" in active:
        z[_gaps(_rng(seed, "gaps"), frame, truth)] = np.nan
    source = f"seamountae.synth seed={seed} scenario={scenario} confounders={','.join(active) or 'none'}"
    return _canonical(z, frame, source), truth


# --------------------------------------------------------------------------- planting into real grids


def _region_frame(grid: xr.DataArray, region, caller: str) -> tuple[np.ndarray, np.ndarray, _Frame]:
    """Rows, columns and km frame of a geographic grid's (lon_min, lon_max, lat_min, lat_max) box."""
    if not int(grid.attrs.get("geographic", 0)):
        raise SeamountaeError(f"{caller}: needs a geographic (lon/lat) grid")
    x, y = grid.x.values, grid.y.values
    lon0, lon1, lat0, lat1 = region if region is not None else (x[0], x[-1], y[0], y[-1])
    cols = np.flatnonzero((x >= lon0) & (x <= lon1))
    rows = np.flatnonzero((y >= lat0) & (y <= lat1))
    lon, lat = x[cols], y[rows]
    kx = km_per_degree_lon(lat.mean())
    frame = _Frame(lon, lat, float(x[1] - x[0]) * kx, float(y[1] - y[0]) * KM_PER_DEGREE,
                   ((lon - lon.mean()) * kx)[None, :], ((lat - lat.mean()) * KM_PER_DEGREE)[:, None])
    return rows, cols, frame


# --------------------------------------------------------------------------- confounders at seamount height

# Relief as tall as a seamount that no catalogue calls one, the shapes a height threshold cannot
# tell from a seamount: an en-echelon volcanic ridge segment, a tilted fault block (gentle back
# slope, steep scarp) and a landslide debris field (flat-topped blocks with steep sides, a few
# smaller ones around the largest), after the Nuuanu and Wailau debris off Oahu and Molokai.
CONFOUNDER_KINDS = ("ridge_segment", "fault_block", "landslide")
MAX_CONFOUNDER_KM = 80.0  # ridge segments and fault blocks of the Azores plateau run 20-80 km
CONFOUNDER_COLUMNS = ("lon", "lat", "height_m", "kind", "length_km", "width_km", "azimuth_deg", "reach_km")


def _confounder_relief(rng: np.random.Generator, kind: str, dx, dy, height: float, length: float, width: float,
                       azimuth_deg: float) -> np.ndarray:
    az = math.radians(azimuth_deg)
    along = dx * math.sin(az) + dy * math.cos(az)
    across = dx * math.cos(az) - dy * math.sin(az)
    u, v = along / (0.5 * length), across / (0.5 * width)
    if kind == "ridge_segment":
        return render_seamount(dx, dy, height, 0.5 * math.sqrt(length * width), rng.choice(["gaussian", "polynomial"]),
                               azimuth_deg, 1.0 - width / length)
    if kind == "fault_block":
        # Across strike: a ramp from the back edge (v = -1) up to the crest at v = 0.6, then a scarp
        # dropping to the floor by v = 1; along strike the crest tapers to nothing at the tips.
        ramp = np.clip((v + 1.0) / 1.6, 0.0, 1.0)
        scarp = np.clip((1.0 - v) / 0.4, 0.0, 1.0)
        taper = np.cos(0.5 * np.pi * np.clip(np.abs(u), 0.0, 1.0))
        return height * np.minimum(ramp, scarp) * taper
    # Landslide blocks: super-elliptic mesas (flat tops, steep sides) with a smooth foot.
    relief = np.zeros(np.broadcast(dx, dy).shape)
    blocks = [(0.0, 0.0, 1.0, 1.0)] + [(rng.uniform(-2.5, 2.5), rng.uniform(-2.5, 2.5), rng.uniform(0.3, 0.6),
                                        rng.uniform(0.3, 0.7)) for _ in range(rng.integers(2, 6))]
    for ou, ov, scale, tall in blocks:
        r = ((np.abs(u - ou) / scale) ** 6 + (np.abs(v - ov) / scale) ** 6) ** (1.0 / 6.0)
        relief = np.maximum(relief, tall * height * np.clip(1.0 - ((r - 0.7) / 0.3).clip(0.0) ** 2, 0.0, 1.0))
    return relief


def plant_confounders(grid: xr.DataArray, heights_m: np.ndarray, seed: int = 0,
                      region: tuple[float, float, float, float] | None = None, avoid: pd.DataFrame | None = None,
                      avoid_km: float = 25.0) -> tuple[xr.DataArray, pd.DataFrame]:
    """Plant one confounder per height in `heights_m` (kinds in turn) into a real geographic grid.

    The heights are meant to be those of planted seamounts, so a detector that rises with height
    meets confounders exactly as tall as what it should find. avoid: a table (lon, lat and,
    optionally, radius_km) that no confounder comes within `avoid_km` of beyond that radius, such
    as the catalogue and the planted seamounts. Each confounder's summit stays below
    SUMMIT_CEILING_M; one that cannot fit there, or would cover a missing cell, is not planted.
    Returns the grid with the confounders added (a copy) and their table (CONFOUNDER_COLUMNS;
    reach_km: the radius around (lon, lat) that holds all of a confounder's relief).
    """
    rows, cols, frame = _region_frame(grid, region, "plant_confounders")
    taken = [] if avoid is None else [(float(a), float(b), avoid_km + float(r)) for a, b, r in zip(
        avoid["lon"], avoid["lat"], avoid["radius_km"] if "radius_km" in avoid else np.zeros(len(avoid)))]
    z = grid.values[np.ix_(rows, cols)].astype(np.float64)
    rng = np.random.default_rng([seed, len(_PARTS)])  # a stream of its own: the seamounts' stays as it was
    out_rows = []
    for i, height in enumerate(sorted(np.asarray(heights_m, float), reverse=True)):
        kind = CONFOUNDER_KINDS[i % len(CONFOUNDER_KINDS)]
        # Sizes for the height: ridge segments and fault blocks 4-10 times longer than wide, as wide
        # as a seamount of that height is across; landslide blocks kilometres wide per 100 m of height.
        if kind == "landslide":
            width = height / 1000.0 * rng.uniform(6.0, 12.0)
            length = width * rng.uniform(1.0, 2.0)
        else:
            width = 2.0 * height / 1000.0 / float(np.clip(rng.normal(HR_MEAN, HR_SD), HR_MIN, HR_MAX))
            length = width * rng.uniform(4.0, 10.0)
            if length > MAX_CONFOUNDER_KM:  # the tallest stay stubby rather than run across the grid
                length = max(MAX_CONFOUNDER_KM, 2.0 * width)
        azimuth = rng.uniform(0.0, 180.0)
        reach = 0.5 * length * (3.5 if kind == "landslide" else 1.0)
        unit = pd.DataFrame({"radius_km": [reach], "ellipticity": [0.0]})
        spot = _place(rng, frame, unit, taken, spacing=1.0)
        if spot is None:
            continue
        c_lon, c_lat = float(spot[0][0]), float(spot[1][0])
        taken.append((c_lon, c_lat, reach))
        r, c, dx, dy = frame.window(c_lon, c_lat, reach)
        g = _confounder_relief(rng, kind, dx, dy, 1.0, length, width, azimuth)
        under = z[r, c][g > 0.0]
        if not under.size or np.isnan(under).any():
            continue
        height = min(height, SUMMIT_CEILING_M - under.max())
        if height < MIN_HEIGHT_M:
            continue
        z[r, c] += height * g
        out_rows.append((c_lon, c_lat, height, kind, length, width, azimuth, reach))
    out = grid.copy(data=grid.values.copy())
    out.values[np.ix_(rows, cols)] = z.astype(np.float32)
    out.attrs["source"] = f"{grid.attrs.get('source', '')} + {len(out_rows)} confounders planted (seed {seed})"
    return out, pd.DataFrame(out_rows, columns=list(CONFOUNDER_COLUMNS))


def plant(grid: xr.DataArray, seed: int = 0, n_seamounts: int | None = None, region: tuple[float, float, float, float] | None = None,
          avoid: pd.DataFrame | None = None, avoid_km: float = 20.0, max_height_m: float = 3000.0
          ) -> tuple[xr.DataArray, pd.DataFrame]:
    """Plant synthetic seamounts (every shape, 300 m to `max_height_m`) into a real geographic grid.

    Real seafloor with known truth: recall on the planted seamounts is exact, and detections far
    from them and from the catalogued ones are false detections on real fabric. region: (lon_min,
    lon_max, lat_min, lat_max) to plant in (default the whole grid); avoid: a catalogue (lon, lat)
    whose seamounts no planted one comes within `avoid_km` of, beyond its own basal radius.
    n_seamounts: default one per 12,500 km² of the region. Returns the grid with the seamounts
    added (a copy) and their truth table (synthesize's columns).
    """
    rows, cols, frame = _region_frame(grid, region, "plant")
    taken = [] if avoid is None else [(float(a), float(b), avoid_km) for a, b in zip(avoid["lon"], avoid["lat"])]
    z = grid.values[np.ix_(rows, cols)].astype(np.float64)
    if n_seamounts is None:
        n_seamounts = round(z.size * frame.dx_km * frame.dy_km / KM2_PER_SEAMOUNT)
    truth = _plant_seamounts(_rng(seed, "seamounts"), frame, z, n_seamounts, taken, max_height_m)
    out = grid.copy(data=grid.values.copy())
    out.values[np.ix_(rows, cols)] = z.astype(np.float32)
    out.attrs["source"] = f"{grid.attrs.get('source', '')} + {len(truth)} seamounts planted (seed {seed})"
    return out, truth
