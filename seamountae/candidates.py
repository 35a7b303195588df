"""Candidate seamounts: the summits of a grid that stand high enough to be judged, each measured
at its own scale.

A candidate is a local summit (morphology.find_summits) that stands at least `min_height_m` above
its own surroundings, lies far enough from missing cells, and is the main top of its edifice (not
a secondary top: morphology.secondary) or stands `min_height_m` above the ground joining it to
that edifice's top (a flank cone). Small islands (morphology.small_islands, up to ISLAND_MAX_KM2)
are the tops of seamounts that break the surface: their cells count as sea level, so the edifice
is measured from the sea floor around them and is reported with `breaks_surface`; larger land and
gaps in the data stay missing, and no candidate lies within `missing_buffer_km` of them. Each is
measured in a window `radius_ratio` basal radii wide, within `window_km`, so that an isolated
edifice closes inside it and a ridge crest does not: every summit's window settles on its height
and radius first (morphology.settle), and only the summits that pruning keeps are measured whole
(morphology.measure), as morphology.describe would. The rules are recorded by `tile`, carried by
the model and used by `score`, so training and detection see candidates the same way. A grid is
searched in tiles of rows and columns with a halo, so a lazily opened grid is never loaded whole.

Layer 3, arithmetic: imports layers 1-3 only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial import cKDTree

from .config import ISLAND_MAX_KM2, default
from .geometry import GridGeometry
from .grid import read_window
from .morphology import find_summits, max_basal_radius_km, measure, missing_km, secondary, settle, small_islands
from .threads import threaded_map

# The ground between a summit and a higher one must drop this fraction of its height, or it is
# the higher one's secondary top.
PROMINENCE = 0.25
# Background candidates of a training grid lie farther than this from every catalogued seamount.
BACKGROUND_KM = 15.0


@dataclass(frozen=True)
class CandidateRules:
    """How candidates are found and measured: recorded by `tile`, carried by the model, used by `score`."""

    patch_km: float = default("tile", "patch_km")
    window_km: tuple[float, float] = default("tile", "window_km")
    radius_ratio: float = default("tile", "radius_ratio")
    min_height_m: float = default("tile", "min_height_m")
    separation_km: float = default("tile", "separation_km")
    missing_buffer_km: float = default("tile", "missing_buffer_km")

    @classmethod
    def from_meta(cls, meta: dict) -> "CandidateRules":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["candidates"].items()})

    def as_meta(self) -> dict:
        return {"patch_km": float(self.patch_km), "window_km": [float(v) for v in self.window_km],
                "radius_ratio": float(self.radius_ratio), "min_height_m": float(self.min_height_m),
                "separation_km": float(self.separation_km), "missing_buffer_km": float(self.missing_buffer_km)}

    @property
    def reach_km(self) -> float:
        """How far from a summit finding, measuring and pruning it look (its measuring window, and a
        neighbour's, whose summit can be a window away)."""
        return 2 * max(self.window_km[1], self.patch_km) + self.separation_km


CANDIDATE_COLUMNS = ("row", "col", "x", "y", "centre_x", "centre_y", "breaks_surface", "summit_m", "height_m", "base_m",
                     "basal_radius_km", "area_km2", "window_km", "closure", "elongation")


# What `measure` finds beyond the settled scale, for the candidates pruning keeps.
SHAPE_COLUMNS = ("area_km2", "closure", "elongation", "centre_rows", "centre_cols")


def _halo(geometry: GridGeometry, rules: CandidateRules, r0: int, r1: int) -> tuple[int, int, np.ndarray, int]:
    """The rows [w0, w1) a search of rows [r0, r1) reads, their km per column, and the columns it
    reads on each side: `rules.reach_km` all round, at the narrowest row's scale."""
    halo = int(math.ceil(rules.reach_km / geometry.cell_size_km()[0])) + 1
    w0, w1 = max(r0 - halo, 0), min(r1 + halo, geometry.ny)
    _, dx_rows = geometry.row_km(np.arange(w0, w1))
    side = min(geometry.nx, int(math.ceil(rules.reach_km / float(dx_rows.min()))) + 1)
    return w0, w1, dx_rows, side


def find_candidates(grid: xr.DataArray, rules: CandidateRules, rows: slice = slice(None),
                    cols: slice = slice(None)) -> pd.DataFrame:
    """The candidates whose summits lie in `rows` × `cols` of the grid (all of it by default), measured.

    The grid is read only over those cells and a halo of `rules.reach_km`, so a grid opened lazily
    (grid.open_grid) can be searched tile by tile; a candidate belongs to the tile holding its
    summit, and every tile sees around it what the whole grid would show. A global grid is read
    with the same halo across the antimeridian, so an edifice on it is found once, measured whole.
    """
    ny, nx = grid.shape
    r0, r1, _ = rows.indices(ny)
    c0, c1, _ = cols.indices(nx)
    geometry = GridGeometry.of(grid)
    dy_km, _ = geometry.cell_size_km()
    w0, w1, dx_rows, side = _halo(geometry, rules, r0, r1)
    v0, v1 = (c0 - side, c1 + side) if geometry.wraps else (max(c0 - side, 0), min(c1 + side, nx))
    z = read_window(grid, w0, w1, v0, v1, geometry.wraps)
    island = small_islands(z, dy_km, dx_rows, ISLAND_MAX_KM2) if int(grid.attrs.get("islands", 1)) else None
    if island is not None:
        z[island] = 0.0  # in place: read_window's array is this call's own
    dx_mid = float(np.median(dx_rows))
    peaks = find_summits(z, dy_km, dx_mid, rules.separation_km)
    inside = (peaks[:, 0] >= r0 - w0) & (peaks[:, 0] < r1 - w0) & (peaks[:, 1] >= c0 - v0) & (peaks[:, 1] < c1 - v0)
    lo, hi = rules.window_km

    def settled(i: int) -> dict | None:
        """peaks[i]'s own window and scale, if it is a candidate: all that pruning needs."""
        r, c = (int(v) for v in peaks[i])
        window, (base, height, radius) = settle(z, r, c, dy_km, float(dx_rows[r]), rules.patch_km, lo, hi, rules.radius_ratio)
        if not (height >= rules.min_height_m and radius > 0):
            return None
        missing = missing_km(z, r, c, dy_km, float(dx_rows[r]), window)
        if not missing >= rules.missing_buffer_km:
            return None
        return {"row": r, "col": c, "summit_m": float(z[r, c]), "breaks_surface": bool(island is not None and island[r, c]),
                "base_m": base, "height_m": height, "basal_radius_km": radius, "window_km": window, "missing_km": missing}

    def settled_of(indices) -> dict[int, dict]:
        """The candidates among peaks[indices], by index, settled."""
        return {i: found for i, found in zip(indices, threaded_map(settled, indices)) if found is not None}

    # The halo's summits are settled only where one could be the higher top an owned candidate is a
    # secondary of (`secondary`): the tile's own share of the work, not the whole halo's.
    records = settled_of(np.flatnonzero(inside))
    records.update(settled_of(_possible_hosts(peaks, inside, records, z, dy_km, float(dx_rows.min()),
                                              max_basal_radius_km(max(hi, rules.patch_km)))))
    columns = ["row", "col", "summit_m", "breaks_surface", "base_m", "height_m", "basal_radius_km", "window_km", "missing_km"]
    table = pd.DataFrame([records[i] for i in sorted(records)], columns=columns)  # in the summits' order: `secondary` breaks ties by it
    if len(table):
        drop = secondary(z, table, dy_km, dx_rows[table["row"].to_numpy(int)], PROMINENCE, rules.min_height_m)
        table = table[~drop]
    owned = (table["row"] >= r0 - w0) & (table["row"] < r1 - w0) & (table["col"] >= c0 - v0) & (table["col"] < c1 - v0)
    table = table[owned].reset_index(drop=True)

    kept = table[["row", "col", "window_km", "base_m", "height_m", "basal_radius_km"]].to_numpy(float)

    def measured(k: int) -> dict:
        """The k-th kept candidate's shape, footprint and centre, measured once, in its settled window."""
        r, c, window, *scale = kept[k]
        return measure(z, int(r), int(c), dy_km, float(dx_rows[int(r)]), float(window), tuple(float(v) for v in scale))

    shape = pd.DataFrame(threaded_map(measured, range(len(table))), columns=list(SHAPE_COLUMNS))
    table = table.assign(**{name: shape[name].to_numpy(float) for name in SHAPE_COLUMNS})
    if not len(table):  # typed as a found table, so tiles without candidates concatenate with the rest
        table = table.astype({c: int if c in ("row", "col") else bool if c == "breaks_surface" else float for c in table})
    table = table.assign(row=table["row"] + w0, col=table["col"] + v0)
    table["x"] = geometry.x_of(table["col"].to_numpy(int))
    table["y"] = geometry.y_of(table["row"].to_numpy(int))
    table["centre_x"] = geometry.x_of(table["col"].to_numpy(float) + table["centre_cols"].to_numpy(float))
    table["centre_y"] = geometry.y_of(table["row"].to_numpy(float) + table["centre_rows"].to_numpy(float))
    return table[list(CANDIDATE_COLUMNS)]


def _possible_hosts(peaks: np.ndarray, inside: np.ndarray, owned: dict[int, dict], z: np.ndarray, dy_km: float,
                    dx_min_km: float, max_radius_km: float) -> np.ndarray:
    """The indices of the summits outside the tile (not `inside`) that `secondary` could find to be
    the higher top of one of the tile's candidates (`owned`, by index): no lower than it, and no
    farther than its basal radius plus the largest a summit can have. Distances on the narrowest
    column scale, never more than the true ones, so no possible host is missed."""
    halo = np.flatnonzero(~inside)
    if not owned or not halo.size:
        return np.zeros(0, int)
    own = np.fromiter(owned, int)
    top = z[peaks[own, 0], peaks[own, 1]]
    reach = np.array([owned[i]["basal_radius_km"] for i in own]) + max_radius_km
    own_km, halo_km = (np.column_stack([peaks[at, 0] * dy_km, peaks[at, 1] * dx_min_km]) for at in (own, halo))
    near = cKDTree(own_km).query_ball_point(halo_km, float(reach.max()))
    keep = []
    for k, (h, js) in enumerate(zip(halo, near)):
        if js:
            js = np.asarray(js)
            apart = np.hypot(*(halo_km[k] - own_km[js]).T)
            if np.any((z[peaks[h, 0], peaks[h, 1]] >= top[js]) & (apart <= reach[js])):
                keep.append(h)
    return np.asarray(keep, int)


# Rows of the grid searched at once (plus their halo): bounds the memory of a lazily opened grid.
BLOCK_CELLS = 1 << 22
# Cells a search reads at most, halo included (128 MB of float32): wider grids are searched in
# tiles of columns too (a global 15″ grid in about 8), narrower ones in whole rows.
TILE_READ_CELLS = 1 << 25


def search_tiles(grid: xr.DataArray, rules: CandidateRules, rows: slice = slice(None),
                 cols: slice = slice(None)) -> Iterator[pd.DataFrame]:
    """The candidates of the grid's `rows` × `cols` (default all), tile by tile: blocks of rows, cut into
    columns where a block would read more than TILE_READ_CELLS. Tiles without candidates are skipped."""
    ny, nx = grid.shape
    r0, r1, _ = rows.indices(ny)
    c0, c1, _ = cols.indices(nx)
    geometry = GridGeometry.of(grid)
    halo_rows = rules.reach_km / geometry.cell_size_km()[0]
    step = max(1, BLOCK_CELLS // max(nx, 1), int(4 * halo_rows))  # blocks no thinner than their halo
    for a in range(r0, r1, step):
        block = slice(a, min(a + step, r1))
        w0, w1, _, side = _halo(geometry, rules, block.start, block.stop)
        n_tiles = -(-(w1 - w0) * (c1 - c0 + 2 * side) // TILE_READ_CELLS)
        width = -(-(c1 - c0) // n_tiles)
        for c in range(c0, c1, width):
            found = find_candidates(grid, rules, block, slice(c, min(c + width, c1)))
            if len(found):
                yield found
