"""Detection: from the judged candidates of a score file to a table of seamounts.

`score` found every candidate summit of the grid, measured it at its own scale and gave it a
seamount score, the model's combined evidence (evidence.py). The rule here, in order:
1. A candidate is reported if its score is at least the threshold (`auto`: the model's own,
   chosen for the best F1 on its training grid) and its height at least `min_height_m`.
2. Non-maximum suppression: in order of score (then height), a candidate within
   max(min_separation_km, half the basal radius of a kept seamount) of it is a duplicate.
3. Each seamount's footprint (cells connected to its summit that stand above its base + 10 % of
   its height, within 1.5 basal radii: morphology.footprint; an island's land counts as sea level)
   is labelled with its id in the `cluster` map.

`method="map"` is the seed's detector instead of step 1: threshold the score map (each cell's best
pyramid level: the conformal p-value of its reconstruction error against held-out seamounts'),
cluster the connected cells that pass it and stand above their patch's outer ring, and take one
candidate per cluster at its highest cell, measured by the model's candidate rules like any other.
Steps 2 and 3 follow as for candidates.

Layer 5, stages: imports layers 1-5 only.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage
from scipy.spatial import cKDTree

from .candidates import CandidateRules
from .config import DETECT_METHODS, default
from .errors import SeamountaeError
from .evidence import SHAPE_COLUMNS, candidates_from_dataset
from .geometry import GridGeometry
from .grid import read_window
from .morphology import FOOTPRINT_REACH, describe, footprint, land
from .shapes import NO_CLASS, code_columns

# The detections file's `cluster` map is written in chunks of this many rows and columns.
LABEL_CHUNKS = (256, 1024)
COLUMNS = ["id", "lon", "lat", "summit_depth_m", "height_m", "basal_radius_km", "area_km2", "score",
           "centre_lon", "centre_lat", "breaks_surface", *SHAPE_COLUMNS]
# Also in the detections file, for diagnosis: the rest of each seamount's evidence.
EXTRA_COLUMNS = ["closure", "elongation", "error", "error_contrast", "latent_distance", "window_km"]
# The map detector's threshold `auto`: a cell passes when it is reconstructed at least as well as
# half the held-out seamounts (conformal p-value >= 0.5). Lower levels merge neighbouring edifices
# into one cluster; on the built-in model's training grid F1 peaks over 0.4-0.6 (0.41, 0.37, 0.38).
MAP_THRESHOLD_AUTO = 0.5


def resolve_threshold(threshold: str | float, scores: xr.Dataset | None = None, method: str = "candidates") -> float:
    """The threshold a value or "auto" stands for (auto: the score file's model's own; for the
    map, MAP_THRESHOLD_AUTO)."""
    if method not in DETECT_METHODS:
        raise SeamountaeError(f"--method {method!r}: not a detection method; use " + " or ".join(DETECT_METHODS))
    if threshold in (None, "auto"):
        if method == "map":
            return MAP_THRESHOLD_AUTO
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
           min_separation_km: float = default("detect", "min_separation_km"),
           method: str = default("detect", "method")) -> tuple[pd.DataFrame, np.ndarray]:
    """Seamounts in a score dataset: (table with COLUMNS + EXTRA_COLUMNS plus x, y; footprint label per cell)."""
    table = select(scores, threshold, min_height_m, min_separation_km, method)
    footprints = np.zeros(scores["elevation"].shape, np.int32)
    if table.empty:
        return pd.DataFrame(columns=COLUMNS + EXTRA_COLUMNS + ["x", "y"]), footprints
    label_footprints(footprints, table, elevation_grid(scores))
    return finish_table(table, scores), footprints


def select(scores: xr.Dataset, threshold: str | float = default("detect", "threshold"),
           min_height_m: float = default("detect", "min_height_m"),
           min_separation_km: float = default("detect", "min_separation_km"),
           method: str = default("detect", "method")) -> pd.DataFrame:
    """The reported candidates of a score dataset, best first: steps 1 and 2 of the rule.

    With method "candidates" it reads only the candidates table and the attributes, so a score file
    opened lazily (however large its maps) costs the memory of its candidates; "map" holds a few
    grid-sized arrays (the elevation, the best level's score, the cluster labels), reading the
    score and relief maps one pyramid level at a time.
    """
    if scores.attrs.get("seamountae_kind") != "score":
        raise SeamountaeError("score file: not written by `seamountae score`; give detect the output of score")
    if min(scores["elevation"].shape) < 2:
        raise SeamountaeError("score file: fewer than 2 cells along y or x, so no distances can be measured; score a larger grid")
    if "candidate_score" not in scores:
        raise SeamountaeError("score file: written by an older seamountae, without judged candidates; score it again")
    alpha = resolve_threshold(threshold, scores, method)
    table = candidates_from_dataset(scores) if method == "candidates" else map_candidates(scores, alpha)
    with np.errstate(invalid="ignore"):
        table = table[(table["score"] >= alpha) & (table["height_m"] >= min_height_m)]
    return suppress_duplicates(table, scores, float(min_separation_km))


def map_candidates(scores: xr.Dataset, alpha: float) -> pd.DataFrame:
    """The seed's detector: one candidate per connected cluster of cells whose best level's score is
    at least `alpha` and whose patch centre stands above its outer ring, at the cluster's highest
    cell. It is measured as `score` measures candidates (morphology.describe with the model's
    rules); where a judged candidate has the same summit its evidence is kept, and the score is the
    cluster's best."""
    best = np.full(scores["elevation"].shape, -np.inf, np.float32)
    for k in range(scores.sizes["level"]):
        level_score = np.asarray(scores["score"].isel(level=k).values, np.float32)
        raised = np.asarray(scores["relief_m"].isel(level=k).values, np.float32) > 0
        with np.errstate(invalid="ignore"):
            best = np.where(raised & (level_score > best), level_score, best)
    clusters, n = ndimage.label(best >= alpha, structure=np.ones((3, 3), bool))
    judged = candidates_from_dataset(scores).set_index(["row", "col"], drop=False)
    if n == 0:
        return judged.iloc[:0].reset_index(drop=True)
    elevation = np.asarray(scores["elevation"].values, np.float32)
    summits = ndimage.maximum_position(np.where(np.isfinite(elevation), elevation, -np.inf), clusters, np.arange(1, n + 1))
    cluster_score = ndimage.maximum(best, clusters, np.arange(1, n + 1))
    geometry = GridGeometry.of(scores)
    rules = CandidateRules.from_meta({"candidates": json.loads(scores.attrs["candidate_rules"])})
    records = []
    for (row, col), value in zip(summits, cluster_score):
        if (row, col) in judged.index:
            record = judged.loc[(row, col)].to_dict()
        else:
            dy_km, dx_km = geometry.row_km(row)
            reach = int(np.ceil(rules.reach_km / min(dy_km, float(dx_km)))) + 1
            r0, c0 = max(row - reach, 0), max(col - reach, 0)
            window = read_window(scores["elevation"], r0, row + reach + 1, c0, col + reach + 1)
            found = describe(window, row - r0, col - c0, dy_km, float(dx_km), rules.patch_km, *rules.window_km,
                             rules.radius_ratio)
            record = {**found, "row": row, "col": col, "summit_m": float(elevation[row, col]), "breaks_surface": 0,
                      "centre_x": float(geometry.x_of(col + found["centre_cols"])),
                      "centre_y": float(geometry.y_of(row + found["centre_rows"])),
                      "error": np.nan, "error_contrast": np.nan, "latent_distance": np.nan,
                      "shape_class": NO_CLASS, "shape_distance": np.nan}
        records.append({**record, "x": float(geometry.x_of(col)), "y": float(geometry.y_of(row)),
                        "score": float(value)})
    table = pd.DataFrame(records)
    return table[table["basal_radius_km"] > 0].reset_index(drop=True)


def lonlat_geometry(scores: xr.Dataset) -> GridGeometry:
    """The score file's geometry, which must be able to give summits in lon/lat."""
    geometry = GridGeometry.of(scores)
    if not geometry.geographic and not geometry.crs:
        raise SeamountaeError("score file: the grid has projected x/y coordinates but no CRS, so summits cannot be "
                              "given in lon/lat; give the grid its CRS (GeoTIFF, or netCDF with crs_wkt) and score it again")
    return geometry


def suppress_duplicates(table: pd.DataFrame, scores: xr.Dataset, separation_km: float) -> pd.DataFrame:
    """Greedy non-maximum suppression on summits (score first, then height), by true distance on the grid."""
    table = table.sort_values(["score", "height_m"], ascending=False, kind="stable").reset_index(drop=True)
    if len(table) < 2:
        return table
    # Chords on a lon/lat grid (within a few tens of km, the great-circle distance), km on a projected one.
    points = GridGeometry.of(scores).points_km(table["x"].to_numpy(float), table["y"].to_numpy(float))
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


def footprint_window(geometry: GridGeometry, row: int, col: int, radius_km: float) -> tuple[int, int, int, int]:
    """The window (r0, r1, c0, c1) that holds the footprint of a seamount with its summit at (row,
    col): FOOTPRINT_REACH basal radii and a cell around it. Rows are clipped to the grid; columns
    run past its edges on a global grid (read them with wrap), are clipped on others."""
    dy_km, dx_km = geometry.row_km(row)
    reach_r = int(np.ceil(FOOTPRINT_REACH * radius_km / dy_km)) + 1
    reach_c = int(np.ceil(FOOTPRINT_REACH * radius_km / float(dx_km))) + 1
    r0, r1 = max(row - reach_r, 0), min(row + reach_r + 1, geometry.ny)
    if geometry.wraps:
        reach_c = min(reach_c, (geometry.nx - 1) // 2)
        return r0, r1, col - reach_c, col + reach_c + 1
    return r0, r1, max(col - reach_c, 0), min(col + reach_c + 1, geometry.nx)


def label_footprints(labels, table: pd.DataFrame, grid: xr.DataArray) -> None:
    """Mark each seamount's footprint (morphology.footprint) in `labels` with its id (1, 2, … in table
    order; a cell covered by several takes the first).

    `labels` is anything sliced like a 2-D array (a numpy array, a netCDF variable) and `grid` the
    elevation (in memory or opened lazily): each footprint reads and writes only its own window,
    across the antimeridian on a global grid.
    """
    geometry = GridGeometry.of(grid)
    dy_km, dx_rows = geometry.row_km(table["row"].to_numpy(int))
    summits = table.reindex(columns=["row", "col", "base_m", "height_m", "basal_radius_km", "breaks_surface"],
                            fill_value=0).to_numpy(float)
    # A cell takes the smallest id whose footprint covers it, whatever the order the footprints are
    # drawn in: drawn along bands of LABEL_CHUNKS rows, west to east, a file's chunks are met one
    # after the other, each decompressed about once, not once per seamount.
    order = np.lexsort((summits[:, 1], summits[:, 0] // LABEL_CHUNKS[0]))
    for k in order:
        row, col, base, height, radius, island = summits[k]
        row, col = int(row), int(col)
        r0, r1, c0, c1 = footprint_window(geometry, row, col, radius)
        window = read_window(grid, r0, r1, c0, c1, geometry.wraps)
        if island:  # its land, missing in the grid, is part of it (candidates.py): at sea level
            window = np.where(~np.isfinite(window) & land(window), np.float32(0.0), window)
        rows, cols, mask = footprint(window, row - r0, col - c0, dy_km, float(dx_rows[k]), base, height, radius)
        rows = slice(rows.start + r0, rows.stop + r0)
        # The window's columns on the grid: one run, or two where it crosses the antimeridian.
        grid_cols = (np.arange(cols.start, cols.stop) + c0) % geometry.nx
        for part in np.split(np.arange(grid_cols.size), np.flatnonzero(np.diff(grid_cols) != 1) + 1):
            span = slice(int(grid_cols[part[0]]), int(grid_cols[part[-1]]) + 1)
            current = np.asarray(labels[rows, span])
            labels[rows, span] = np.where(mask[:, part] & ((current == 0) | (current > k + 1)), k + 1, current)


def finish_table(table: pd.DataFrame, scores: xr.Dataset) -> pd.DataFrame:
    """Candidates → the seamount table: WGS84 lon/lat, depths, ids in score order."""
    lon, lat = lonlat_geometry(scores).to_lonlat(table["x"].to_numpy(float), table["y"].to_numpy(float))
    # A score file written before edifice centres and islands: the summit is the centre, no island.
    centre_lon, centre_lat = lonlat_geometry(scores).to_lonlat(table.get("centre_x", table["x"]).to_numpy(float),
                                                               table.get("centre_y", table["y"]).to_numpy(float))
    out = pd.DataFrame({
        "id": np.arange(1, len(table) + 1),
        "lon": lon,
        "lat": lat,
        "summit_depth_m": -table["summit_m"].to_numpy(float),
        **{name: table[name].to_numpy(float) for name in ("height_m", "basal_radius_km", "area_km2", "score")},
        "centre_lon": centre_lon,
        "centre_lat": centre_lat,
        "breaks_surface": table.get("breaks_surface", pd.Series(0, index=table.index)).to_numpy() > 0,
        # A score file written before shape classes: no class, no distance.
        "shape_class": table.get("shape_class", pd.Series(NO_CLASS, index=table.index)).to_numpy(int),
        "shape_distance": table.get("shape_distance", pd.Series(np.nan, index=table.index)).to_numpy(float),
        **{name: table[name].to_numpy(float) for name in EXTRA_COLUMNS},
        "x": table["x"].to_numpy(float),
        "y": table["y"].to_numpy(float),
        **{name: table[name].to_numpy(np.float32) for name in code_columns(list(table.columns))},
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
    for name in COLUMNS + EXTRA_COLUMNS + ["x", "y"] + code_columns(list(table.columns)):
        ds[f"seamount_{name}"] = ("seamount", table[name].to_numpy() if len(table) else np.zeros(0))
    return ds


def table_from_detections(ds: xr.Dataset, columns=COLUMNS) -> pd.DataFrame:
    """The per-seamount table of a detections dataset (`columns`, of COLUMNS + EXTRA_COLUMNS + x, y),
    each seamount's shape code (shape_code_1..N) after them where the file has one."""
    if ds.attrs.get("seamountae_kind") != "detections":
        raise SeamountaeError("detections file: not written by `seamountae detect`; give export the output of detect")
    codes = code_columns([str(v).removeprefix("seamount_") for v in ds.data_vars])
    table = pd.DataFrame({name: ds[f"seamount_{name}"].values for name in [*columns, *codes]})
    table["id"] = table["id"].astype(int)
    return table
