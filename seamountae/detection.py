"""Detection: from the judged candidates of a score file to a table of seamounts.

`score` found every candidate summit of the grid, measured it at its own scale and gave it a
seamount score, the model's combined evidence (evidence.py). The rule here, in order:
1. A candidate is reported if its score is at least the threshold (`auto`: the model's own,
   chosen for the best F1 on its training grid) and its height at least `min_height_m`.
2. Non-maximum suppression: in order of score (then height), a candidate within
   max(min_separation_km, half the basal radius of a kept seamount) of it is a duplicate.
3. Each seamount's footprint (cells connected to its summit that stand above its base + 10 % of
   its height, within 1.5 basal radii: morphology.footprint) is labelled with its id in the
   `cluster` map.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial import cKDTree

from .config import default
from .errors import SeamountaeError
from .evaluation import unit_vectors
from .grid import EARTH_RADIUS_KM, local_km, read_window, wraps
from .evidence import candidates_from_dataset
from .morphology import FOOTPRINT_REACH, footprint

COLUMNS = ["id", "lon", "lat", "summit_depth_m", "height_m", "basal_radius_km", "area_km2", "score"]
# Also in the detections file, for diagnosis: the rest of each seamount's evidence.
EXTRA_COLUMNS = ["closure", "elongation", "error", "error_contrast", "latent_distance", "window_km"]


def resolve_threshold(threshold: str | float, scores: xr.Dataset | None = None) -> float:
    """The threshold a value or "auto" stands for (auto: the score file's model's own)."""
    if threshold in (None, "auto"):
        if scores is None:
            return math.nan
        if "threshold_auto" not in scores.attrs:
            raise SeamountaeError("score file: written by an older seamountae, without the model's threshold; score it again")
        return float(scores.attrs["threshold_auto"])
    try:
        value = float(threshold)
    except ValueError:
        raise SeamountaeError(f"--threshold {threshold!r}: not a number; use auto or a score between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise SeamountaeError(f"--threshold {value}: scores lie between 0 and 1; use auto (the model's own) or a value in [0, 1]")
    return value


def elevation_grid(scores: xr.Dataset) -> xr.DataArray:
    """The score file's elevation as a canonical grid (georeferencing lives in the dataset's attributes)."""
    return scores["elevation"].assign_attrs(geographic=int(scores.attrs.get("geographic", 0)), crs=scores.attrs.get("crs", ""))


def detect(scores: xr.Dataset, threshold: str | float = default("detect", "threshold"),
           min_height_m: float = default("detect", "min_height_m"),
           min_separation_km: float = default("detect", "min_separation_km")) -> tuple[pd.DataFrame, np.ndarray]:
    """Seamounts in a score dataset: (table with COLUMNS + EXTRA_COLUMNS plus x, y; footprint label per cell)."""
    table = select(scores, threshold, min_height_m, min_separation_km)
    footprints = np.zeros(scores["elevation"].shape, np.int32)
    if table.empty:
        return pd.DataFrame(columns=COLUMNS + EXTRA_COLUMNS + ["x", "y"]), footprints
    label_footprints(footprints, table, elevation_grid(scores))
    return finish_table(table, scores), footprints


def select(scores: xr.Dataset, threshold: str | float = default("detect", "threshold"),
           min_height_m: float = default("detect", "min_height_m"),
           min_separation_km: float = default("detect", "min_separation_km")) -> pd.DataFrame:
    """The reported candidates of a score dataset, best first: steps 1 and 2 of the rule.

    Reads only the candidates table and the attributes, so a score file opened lazily (however
    large its maps) costs the memory of its candidates.
    """
    if scores.attrs.get("seamountae_kind") != "score":
        raise SeamountaeError("score file: not written by `seamountae score`; give detect the output of score")
    if min(scores["elevation"].shape) < 2:
        raise SeamountaeError("score file: fewer than 2 cells along y or x, so no distances can be measured; score a larger grid")
    if "candidate_score" not in scores:
        raise SeamountaeError("score file: written by an older seamountae, without judged candidates; score it again")
    alpha = resolve_threshold(threshold, scores)
    table = candidates_from_dataset(scores)
    with np.errstate(invalid="ignore"):
        table = table[(table["score"] >= alpha) & (table["height_m"] >= min_height_m)]
    return suppress_duplicates(table, scores, float(min_separation_km))


def _lonlat(table: pd.DataFrame, scores: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    x, y = table["x"].to_numpy(float), table["y"].to_numpy(float)
    if int(scores.attrs.get("geographic", 0)):
        return x, y
    from rasterio.crs import CRS
    from rasterio.warp import transform

    if not scores.attrs.get("crs"):
        raise SeamountaeError("score file: the grid has projected x/y coordinates but no CRS, so summits cannot be "
                              "given in lon/lat; give the grid its CRS (GeoTIFF, or netCDF with crs_wkt) and score it again")
    lon, lat = transform(CRS.from_wkt(scores.attrs["crs"]), CRS.from_epsg(4326), list(x), list(y))
    return np.asarray(lon, float), np.asarray(lat, float)


def suppress_duplicates(table: pd.DataFrame, scores: xr.Dataset, separation_km: float) -> pd.DataFrame:
    """Greedy non-maximum suppression on summits (score first, then height), by great-circle distance."""
    table = table.sort_values(["score", "height_m"], ascending=False, kind="stable").reset_index(drop=True)
    if len(table) < 2:
        return table
    lon, lat = _lonlat(table, scores)
    points = unit_vectors(lon, lat) * EARTH_RADIUS_KM  # chords: within a few tens of km, the distance
    tree = cKDTree(points)
    radius = np.maximum(separation_km, 0.5 * table["basal_radius_km"].to_numpy(float))
    kept = np.ones(len(table), bool)
    for i in range(len(table)):
        if not kept[i]:
            continue
        for j in tree.query_ball_point(points[i], float(radius[i])):
            if j > i:
                kept[j] = False
    return table[kept].reset_index(drop=True)


def label_footprints(labels, table: pd.DataFrame, grid: xr.DataArray) -> None:
    """Mark each seamount's footprint (morphology.footprint) in `labels` with its id (1, 2, … in table
    order; a cell keeps the first).

    `labels` is anything sliced like a 2-D array (a numpy array, a netCDF variable) and `grid` the
    elevation (in memory or opened lazily): each footprint reads and writes only its own window,
    across the antimeridian on a global grid.
    """
    dy_km, dx_rows = local_km(grid, grid.y.values[table["row"].to_numpy(int)])
    ny, nx = grid.shape
    wrap = wraps(grid)
    columns = ["row", "col", "base_m", "height_m", "basal_radius_km"]
    for k, (row, col, base, height, radius) in enumerate(table[columns].itertuples(index=False)):
        row, col = int(row), int(col)
        reach_r = int(np.ceil(FOOTPRINT_REACH * radius / dy_km)) + 1
        reach_c = min(int(np.ceil(FOOTPRINT_REACH * radius / dx_rows[k])) + 1, (nx - 1) // 2 if wrap else nx)
        r0, r1 = max(row - reach_r, 0), min(row + reach_r + 1, ny)
        c0, c1 = (col - reach_c, col + reach_c + 1) if wrap else (max(col - reach_c, 0), min(col + reach_c + 1, nx))
        window = read_window(grid, r0, r1, c0, c1, wrap)
        rows, cols, mask = footprint(window, row - r0, col - c0, dy_km, float(dx_rows[k]), base, height, radius)
        rows = slice(rows.start + r0, rows.stop + r0)
        # The window's columns on the grid: one run, or two where it crosses the antimeridian.
        grid_cols = (np.arange(cols.start, cols.stop) + c0) % nx
        for part in np.split(np.arange(grid_cols.size), np.flatnonzero(np.diff(grid_cols) != 1) + 1):
            span = slice(int(grid_cols[part[0]]), int(grid_cols[part[-1]]) + 1)
            current = np.asarray(labels[rows, span])
            labels[rows, span] = np.where(mask[:, part] & (current == 0), k + 1, current)


def finish_table(table: pd.DataFrame, scores: xr.Dataset) -> pd.DataFrame:
    """Candidates → the seamount table: WGS84 lon/lat, depths, ids in score order."""
    lon, lat = _lonlat(table, scores)
    out = pd.DataFrame({
        "id": np.arange(1, len(table) + 1),
        "lon": lon,
        "lat": lat,
        "summit_depth_m": -table["summit_m"].to_numpy(float),
        **{name: table[name].to_numpy(float) for name in COLUMNS[4:] + EXTRA_COLUMNS},
        "x": table["x"].to_numpy(float),
        "y": table["y"].to_numpy(float),
    })
    return out


def detections_dataset(table: pd.DataFrame, clusters: np.ndarray, scores: xr.Dataset, threshold: float) -> xr.Dataset:
    """The detections file content: the cluster label map plus the per-seamount table."""
    ds = xr.Dataset(
        {"cluster": (("y", "x"), clusters, {"long_name": "footprint of the seamount of this id (0 = none)"})},
        coords={"y": scores.y, "x": scores.x},
        attrs={**{k: v for k, v in scores.attrs.items() if k in ("patch_km", "patch_px", "geographic", "crs")},
               "seamountae_kind": "detections", "threshold": float(threshold)},
    )
    for name in COLUMNS + EXTRA_COLUMNS + ["x", "y"]:
        ds[f"seamount_{name}"] = ("seamount", table[name].to_numpy() if len(table) else np.zeros(0))
    return ds


def table_from_detections(ds: xr.Dataset) -> pd.DataFrame:
    """The per-seamount table of a detections dataset (COLUMNS)."""
    if ds.attrs.get("seamountae_kind") != "detections":
        raise SeamountaeError("detections file: not written by `seamountae detect`; give export the output of detect")
    table = pd.DataFrame({name: ds[f"seamount_{name}"].values for name in COLUMNS})
    table["id"] = table["id"].astype(int)
    return table


def footprint_polygons(ds: xr.Dataset) -> list[tuple[dict, list]]:
    """The detections file's footprints as [(properties, ring)]: each seamount's outline (where its
    label meets the rest, half a cell out from its cells) as a closed, counter-clockwise ring of
    [lon, lat], with the seamount's catalogue row as properties."""
    from skimage.measure import find_contours

    table = table_from_detections(ds)
    labels = ds["cluster"].values
    x, y = ds["x"].values, ds["y"].values
    out = []
    for row in table.itertuples(index=False):
        rows, cols = np.nonzero(labels == row.id)
        if not rows.size:
            continue
        r0, c0 = rows.min() - 1, cols.min() - 1  # a margin of one cell: every outline closes
        mask = np.zeros((rows.max() - r0 + 2, cols.max() - c0 + 2))
        mask[rows - r0, cols - c0] = 1.0
        ring = max(find_contours(mask, 0.5), key=len)
        gx = np.interp(ring[:, 1] + c0, np.arange(x.size), x, left=np.nan, right=np.nan)
        gy = np.interp(ring[:, 0] + r0, np.arange(y.size), y, left=np.nan, right=np.nan)
        # Outline points beyond the grid's first or last cell centre: extend the spacing.
        gx = np.where(np.isfinite(gx), gx, x[0] + (ring[:, 1] + c0) * (x[1] - x[0]))
        gy = np.where(np.isfinite(gy), gy, y[0] + (ring[:, 0] + r0) * (y[1] - y[0]))
        lon, lat = _lonlat(pd.DataFrame({"x": gx, "y": gy}), ds)
        if np.sum(lon[:-1] * lat[1:] - lon[1:] * lat[:-1]) < 0:  # clockwise: reverse (RFC 7946 §3.1.6)
            lon, lat = lon[::-1], lat[::-1]
        points = [[float(a), float(b)] for a, b in zip(lon, lat)]
        if points[0] != points[-1]:
            points.append(points[0])
        out.append((row._asdict(), points))
    return out
