"""Detection: from the score map to a table of seamounts.

The rule, in order:
1. Cells are seamount-like where `score ≥ threshold` (the conformal p-value of their patch against
   held-out seamounts; `auto` = 0.05, which keeps ~95 % of seamounts like the training ones) and
   the patch centre stands at least `min_relief_m` above its surroundings.
2. Seamount-like cells are clustered (8-connected); each local elevation maximum inside a cluster,
   at least `min_separation_km` from a higher one, is a candidate summit.
3. Each candidate is measured on the grid: height above the median of a ring at 0.4–0.5 patch
   widths, footprint (cells connected to the summit above base + 10 % of the height), area and
   equivalent basal radius; candidates lower than `min_height_m`, or closer than
   `missing_buffer_km` to missing cells (an island's shelf, a data gap that may hide the real top),
   are dropped.
4. Non-maximum suppression: in order of score (then height), a candidate within
   max(min_separation_km, half the basal radius of a kept seamount) of it is a duplicate.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.measure import label

from .config import default
from .errors import SeamountaeError
from .grid import KM_PER_DEGREE, cell_size_km
from .morphology import measure_at_own_scale

AUTO_THRESHOLD = 0.05
COLUMNS = ["id", "lon", "lat", "summit_depth_m", "height_m", "basal_radius_km", "area_km2", "score"]


def resolve_threshold(threshold: str | float) -> float:
    if threshold in (None, "auto"):
        return AUTO_THRESHOLD
    try:
        value = float(threshold)
    except ValueError:
        raise SeamountaeError(f"--threshold {threshold!r}: not a number; use auto or a score between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise SeamountaeError(f"--threshold {value}: scores lie between 0 and 1; use auto (= {AUTO_THRESHOLD}) or a value in [0, 1]")
    return value


def _elevation(scores: xr.Dataset) -> xr.DataArray:
    """The score file's elevation as a canonical grid (georeferencing lives in the dataset's attributes)."""
    return scores["elevation"].assign_attrs(geographic=int(scores.attrs.get("geographic", 0)), crs=scores.attrs.get("crs", ""))


def _local_km(scores: xr.Dataset, rows: np.ndarray) -> tuple[float, np.ndarray]:
    """km per cell along y, and along x for each row (cos latitude on geographic grids)."""
    dy_km, dx_km = cell_size_km(_elevation(scores))
    if int(scores.attrs.get("geographic", 0)):
        step_x = float(scores.x[1] - scores.x[0])
        dx = step_x * KM_PER_DEGREE * np.cos(np.radians(scores.y.values[rows]))
        return dy_km, dx
    return dy_km, np.full(len(rows), dx_km)


def _nearest_level(levels_km: np.ndarray, window_km: float) -> int:
    return int(np.argmin(np.abs(np.log(np.asarray(levels_km) / window_km))))


def detect(scores: xr.Dataset, threshold: str | float = default("detect", "threshold"),
           min_relief_m: float = default("detect", "min_relief_m"), min_height_m: float = default("detect", "min_height_m"),
           min_separation_km: float = default("detect", "min_separation_km"),
           missing_buffer_km: float = default("detect", "missing_buffer_km")) -> tuple[pd.DataFrame, np.ndarray]:
    """Seamounts in a score dataset: (table with COLUMNS plus x, y; cluster label per cell)."""
    if scores.attrs.get("seamountae_kind") != "score":
        raise SeamountaeError("score file: not written by `seamountae score`; give detect the output of score")
    if min(scores["elevation"].shape) < 2:
        raise SeamountaeError("score file: fewer than 2 cells along y or x, so no distances can be measured; score a larger grid")
    alpha = resolve_threshold(threshold)
    separation = float(min_separation_km)
    patch_km = float(scores.attrs["patch_km"])
    pyramid = tuple(np.atleast_1d(scores.attrs.get("pyramid", [1.0])))
    radius_ratio = float(scores.attrs.get("radius_ratio", 0.0))
    elevation = scores["elevation"].values
    # Per pyramid level maps (level, y, x); a cell is as seamount-like as its best level says, and
    # a candidate's shape is judged again at the level nearest its own size.
    by_level = scores["score"].values.reshape(-1, *elevation.shape)
    relief_by_level = scores["relief_m"].values.reshape(by_level.shape)
    levels_km = np.atleast_1d(scores["level_km"].values) if "level_km" in scores.coords else np.array([patch_km])
    best = np.argmax(np.nan_to_num(by_level, nan=-1.0), axis=0)[None]
    score = np.take_along_axis(by_level, best, 0)[0]
    relief = np.take_along_axis(relief_by_level, best, 0)[0]
    with np.errstate(invalid="ignore"):
        mask = (score >= alpha) & (relief >= min_relief_m) & np.isfinite(elevation)
    clusters = label(mask, connectivity=2).astype(np.int32)
    if clusters.max() == 0:
        return pd.DataFrame(columns=COLUMNS + ["x", "y"]), clusters

    dy_km = cell_size_km(_elevation(scores))[0]
    sep_px = max(1, int(round(separation / dy_km)))
    filled = np.where(np.isfinite(elevation), elevation, -np.inf)
    peaks = peak_local_max(filled, min_distance=sep_px, labels=clusters, exclude_border=False)
    # Every cluster gets at least its highest cell, even if a higher summit nearby shadows it.
    tops = ndimage.maximum_position(filled, clusters, index=np.arange(1, clusters.max() + 1))
    peaks = np.unique(np.vstack([peaks.reshape(-1, 2), np.asarray(tops, int)]), axis=0)

    _, dx_rows = _local_km(scores, peaks[:, 0])
    records = []
    for (row, col), dx_km in zip(peaks, dx_rows):
        attrs = measure_at_own_scale(elevation, row, col, dy_km, float(dx_km), patch_km,
                                     min(pyramid) * patch_km, max(pyramid) * patch_km, radius_ratio)
        window_km = attrs["window_km"]
        if not np.isfinite(attrs["height_m"]) or attrs["height_m"] < min_height_m:
            continue
        if attrs["missing_km"] < missing_buffer_km:  # the real top may hide in the land or gap next to it
            continue
        # The best seamount-likeness near the summit: the lattice may centre a patch a cell or two away.
        r = max(1, int(round(0.1 * window_km / dy_km)))
        near = by_level[_nearest_level(levels_km, window_km)][max(row - r, 0) : row + r + 1, max(col - r, 0) : col + r + 1]
        if not (np.isfinite(near).any() and np.nanmax(near) >= alpha):
            continue  # judged at its own scale, it is not seamount-like enough
        records.append({"row": int(row), "col": int(col), "summit_m": float(elevation[row, col]),
                        "score": float(np.nanmax(near)), **attrs})
    table = pd.DataFrame(records)
    if table.empty:
        return pd.DataFrame(columns=COLUMNS + ["x", "y"]), clusters
    table = suppress_duplicates(table, scores, separation)
    return finish_table(table, scores), clusters


def suppress_duplicates(table: pd.DataFrame, scores: xr.Dataset, separation_km: float) -> pd.DataFrame:
    """Greedy non-maximum suppression on summits (score first, then height)."""
    table = table.sort_values(["score", "height_m"], ascending=False).reset_index(drop=True)
    dy_km, dx = _local_km(scores, table["row"].to_numpy())
    y_km = table["row"].to_numpy() * dy_km
    x_km = table["col"].to_numpy() * dx  # local scale is fine: duplicates are only km apart
    kept: list[int] = []
    for i in range(len(table)):
        d = np.hypot(y_km[kept] - y_km[i], x_km[kept] - x_km[i]) if kept else np.array([])
        radius = np.maximum(separation_km, 0.5 * table["basal_radius_km"].to_numpy()[kept]) if kept else np.array([])
        if not np.any(d < radius):
            kept.append(i)
    return table.iloc[kept].reset_index(drop=True)


def finish_table(table: pd.DataFrame, scores: xr.Dataset) -> pd.DataFrame:
    """Grid cells → coordinates, WGS84 lon/lat, depths; ids numbered west to east within score order."""
    x = scores.x.values[table["col"].to_numpy()]
    y = scores.y.values[table["row"].to_numpy()]
    if int(scores.attrs.get("geographic", 0)):
        lon, lat = x, y
    else:
        from rasterio.crs import CRS
        from rasterio.warp import transform

        if not scores.attrs.get("crs"):
            raise SeamountaeError("score file: the grid has projected x/y coordinates but no CRS, so summits cannot be "
                                  "given in lon/lat; give the grid its CRS (GeoTIFF, or netCDF with crs_wkt) and score it again")
        lon, lat = transform(CRS.from_wkt(scores.attrs["crs"]), CRS.from_epsg(4326), list(x), list(y))
    out = pd.DataFrame({
        "id": np.arange(1, len(table) + 1),
        "lon": np.asarray(lon, float),
        "lat": np.asarray(lat, float),
        "summit_depth_m": -table["summit_m"].to_numpy(),
        "height_m": table["height_m"].to_numpy(),
        "basal_radius_km": table["basal_radius_km"].to_numpy(),
        "area_km2": table["area_km2"].to_numpy(),
        "score": table["score"].to_numpy(),
        "x": x,
        "y": y,
    })
    return out


def detections_dataset(table: pd.DataFrame, clusters: np.ndarray, scores: xr.Dataset, threshold: float) -> xr.Dataset:
    """The detections file content: the cluster label map plus the per-seamount table."""
    ds = xr.Dataset(
        {"cluster": (("y", "x"), clusters, {"long_name": "seamount-like cluster label (0 = none)"})},
        coords={"y": scores.y, "x": scores.x},
        attrs={**{k: v for k, v in scores.attrs.items() if k in ("patch_km", "patch_px", "geographic", "crs")},
               "seamountae_kind": "detections", "threshold": float(threshold)},
    )
    for name in COLUMNS + ["x", "y"]:
        ds[f"seamount_{name}"] = ("seamount", table[name].to_numpy() if len(table) else np.zeros(0))
    return ds


def table_from_detections(ds: xr.Dataset) -> pd.DataFrame:
    if ds.attrs.get("seamountae_kind") != "detections":
        raise SeamountaeError("detections file: not written by `seamountae detect`; give export the output of detect")
    table = pd.DataFrame({name: ds[f"seamount_{name}"].values for name in COLUMNS})
    table["id"] = table["id"].astype(int)
    return table
