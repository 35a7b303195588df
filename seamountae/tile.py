"""The `tile` stage: what training needs from a grid and its catalogue.

`tile` cuts the training patches centred on the catalogued seamounts (each sized to its own edifice,
as `score` sizes every candidate), and lists the grid's candidates, labelled against the catalogue,
with their own-scale patches, for training's calibration. `concat_patches` joins the patch sets of
several grids into one.

Layer 5, stages: imports layers 1-5 only.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from .candidates import BACKGROUND_KM, CandidateRules, find_candidates
from .config import default
from .errors import SeamountaeError
from .evidence import candidate_patches
from .geometry import GridGeometry
from .morphology import describe
from .patches import MAX_NAN_FRACTION, sample_patches
from .progress import progress_bar
from . import terrain


def snap_to_summits(grid: xr.DataArray, x: np.ndarray, y: np.ndarray, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
    """Move each point to the highest valid grid cell within `radius_km` (points off the grid stay)."""
    if radius_km <= 0:
        return x, y
    geometry = GridGeometry.of(grid)
    per_km_y, per_km_x = geometry.cells_per_km(y)
    row, col = geometry.index(x, y)
    z = grid.values
    ny, nx = z.shape
    sx, sy = x.copy(), y.copy()
    for i, (r, c) in enumerate(zip(row, col)):
        ry, rx = int(radius_km * per_km_y[i]), int(radius_km * per_km_x[i])
        r0, r1, c0, c1 = max(r - ry, 0), min(r + ry + 1, ny), max(c - rx, 0), min(c + rx + 1, nx)
        if r0 >= r1 or c0 >= c1:
            continue
        yy, xx = np.ogrid[r0 - r : r1 - r, c0 - c : c1 - c]
        window = np.where(np.hypot(yy / per_km_y[i], xx / per_km_x[i]) <= radius_km, z[r0:r1, c0:c1], np.nan)
        if np.isfinite(window).any():
            k = np.unravel_index(np.nanargmax(window), window.shape)
            sy[i], sx[i] = float(geometry.y_of(r0 + k[0])), float(geometry.x_of(c0 + k[1]))
    return sx, sy


def tile(
    grid: xr.DataArray,
    catalogue: pd.DataFrame,
    patch_km: float = default("tile", "patch_km"),
    patch_px: int = default("tile", "patch_px"),
    pyramid: tuple[float, ...] = default("tile", "pyramid"),
    radius_ratio: float = default("tile", "radius_ratio"),
    window_km: tuple[float, float] = default("tile", "window_km"),
    min_height_m: float = default("tile", "min_height_m"),
    separation_km: float = default("tile", "separation_km"),
    missing_buffer_km: float = default("tile", "missing_buffer_km"),
    shifts_px: int = default("tile", "shifts_px"),
    scales: tuple[float, ...] = default("tile", "scales"),
    snap_km: float = default("tile", "snap_km"),
    progress: bool = False,
) -> xr.Dataset:
    """What training needs from a grid and its catalogue: the seamounts' patches, and the grid's candidates.

    Catalogue positions (often from satellite gravity) can sit kilometres off the summit in the
    grid, so each is first moved to the highest cell within `snap_km`. A catalogued seamount that
    stands at least `min_height_m` there is a training seamount: its patch is centred on its summit
    and sized to it as `score` sizes every candidate (candidates.CandidateRules), so the model learns
    the shape of a seamount, not its size. Each gives (2·shifts_px+1)² × len(scales) patches (shifts
    in patch pixels, scales of its own width); the dihedral flips and rotations are added at training
    time. `seamount` groups the patches of one seamount so that calibration folds hold out whole
    seamounts.

    The candidates (dimension `candidate`) are every summit of the grid that `score` would judge,
    with their measurements and own-scale patches, labelled 1 (a training seamount's summit),
    0 (background: farther than candidates.BACKGROUND_KM from every catalogued seamount) or -1
    (neither); training calibrates the score on them. `n_unseen` counts the training seamounts that
    no candidate stands for. `progress`: a progress bar on stderr over the catalogue (when a terminal).
    """
    if patch_px < 8 or patch_px % 8:
        raise SeamountaeError(f"patch_px={patch_px}: the autoencoder needs a multiple of 8; use 32")
    if not patch_km > 0:
        raise SeamountaeError(f"patch_km={patch_km}: must be positive; use 48")
    if not pyramid or min(pyramid) <= 0:
        raise SeamountaeError(f"pyramid={list(pyramid)}: levels must be positive multiples of patch_km; use [1]")
    rules = CandidateRules(float(patch_km), tuple(float(v) for v in window_km), float(radius_ratio), float(min_height_m),
                           float(separation_km), float(missing_buffer_km))
    label = grid.attrs.get("source") or "grid"
    sx, sy = snap_to_summits(grid, catalogue["lon"].to_numpy(float), catalogue["lat"].to_numpy(float), snap_km)
    geometry = GridGeometry.of(grid)
    row, col = geometry.index(sx, sy)
    dy_km, dx_rows = geometry.row_km(row)
    z = grid.values
    window = np.full(len(catalogue), np.nan)
    lo, hi = rules.window_km
    for i in progress_bar(range(len(catalogue)), progress, desc="tile", unit="seamount"):
        if 0 <= row[i] < grid.sizes["y"] and 0 <= col[i] < grid.sizes["x"]:
            found = describe(z, row[i], col[i], dy_km, float(dx_rows[i]), patch_km, lo, hi, radius_ratio)
            if found["height_m"] >= min_height_m:
                window[i] = found["window_km"]
    seamounts = np.flatnonzero(np.isfinite(window))
    if not seamounts.size and len(catalogue):
        raise SeamountaeError(f"{label}: none of the {len(catalogue)} catalogued seamounts stands {min_height_m:g} m above "
                              "its surroundings in this grid; check that catalogue and grid cover the same seafloor, or "
                              "lower --min-height-m")

    shift = np.arange(-shifts_px, shifts_px + 1)
    ay, ax, asc = (v.ravel() for v in np.meshgrid(shift, shift, np.asarray(scales, float), indexing="ij"))
    n_aug = ay.size
    seamount = np.repeat(seamounts, n_aug)
    scale = np.repeat(window[seamounts] / patch_km, n_aug) * np.tile(asc, seamounts.size)
    px_km = patch_km * scale / patch_px
    lon, lat = sx[seamount], sy[seamount]
    cx, cy = geometry.moved(lon, lat, np.tile(ax, seamounts.size) * px_km, np.tile(ay, seamounts.size) * px_km)
    data = sample_patches(grid, cx, cy, patch_km, patch_px, scale)
    keep = np.isnan(data).reshape(len(data), patch_px * patch_px).mean(1) <= MAX_NAN_FRACTION
    if seamounts.size and not keep.any():
        raise SeamountaeError(f"{label}: every catalogued seamount's patch is more than {MAX_NAN_FRACTION:.0%} missing "
                              "(land, gaps or grid edge); use a larger grid or a smaller --patch-km")

    candidates = find_candidates(grid, rules)
    cx_c, cy_c = candidates["x"].to_numpy(float), candidates["y"].to_numpy(float)
    cand_label = np.full(len(candidates), -1, np.int8)
    cand_seamount = np.full(len(candidates), -1, np.int64)
    # A training seamount's candidate is the one at its summit (or the nearest within the separation);
    # nearest seamounts claim theirs first.
    distance, nearest = geometry.nearest_km(sx[seamounts], sy[seamounts], cx_c, cy_c)
    for k in np.argsort(distance, kind="stable"):
        if distance[k] <= separation_km and cand_seamount[nearest[k]] < 0:
            cand_seamount[nearest[k]], cand_label[nearest[k]] = seamounts[k], 1
    catalogued = geometry.nearest_km(cx_c, cy_c, np.concatenate([catalogue["lon"].to_numpy(float), sx]),
                            np.concatenate([catalogue["lat"].to_numpy(float), sy]))[0]
    cand_label[(cand_label < 0) & (catalogued > BACKGROUND_KM)] = 0
    cand_patches = candidate_patches(grid, candidates, patch_px, patch_km)
    measured = {name: ("candidate", candidates[name].to_numpy()) for name in candidates.columns}
    ds = xr.Dataset(
        {
            "patch": (("sample", "v", "u"), data[keep], {"units": "m", "long_name": "elevation, resampled"}),
            "x": ("sample", cx[keep], {"long_name": "patch centre x (grid coordinates)"}),
            "y": ("sample", cy[keep], {"long_name": "patch centre y (grid coordinates)"}),
            "scale": ("sample", scale[keep], {"long_name": "width of this patch relative to patch_km"}),
            "seamount": ("sample", seamount[keep], {"long_name": "row of the catalogue this patch is centred on"}),
            "candidate_patch": (("candidate", "around", "v", "u"), cand_patches,
                                {"units": "m", "long_name": "own-scale patch, then its surroundings' (evidence.candidate_patches)"}),
            "candidate_label": ("candidate", cand_label, {"long_name": "1 training seamount, 0 background, -1 neither"}),
            "candidate_seamount": ("candidate", cand_seamount, {"long_name": "catalogue row of a training seamount's candidate, else -1"}),
            **{f"candidate_{name}": value for name, value in measured.items()},
        },
        attrs={
            "patch_km": float(patch_km),
            "patch_px": int(patch_px),
            "pyramid": np.asarray(pyramid, float),
            "candidates": json.dumps(rules.as_meta()),
            "geographic": int(grid.attrs.get("geographic", 0)),
            "n_seamounts": int(len(np.unique(seamount[keep]))),
            "n_unseen": int(np.setdiff1d(seamounts, cand_seamount).size),
            "seamountae_kind": "patches",
            "terrain": json.dumps([terrain.statistics(grid)]),  # one entry per grid (concat_patches)
        },
    )
    return ds


def concat_patches(sets: list[xr.Dataset]) -> xr.Dataset:
    """Several patch files (of several grids and catalogues, tiled with the same parameters) as one.

    Seamount ids are kept apart (each set's are offset past the previous sets'), so calibration
    folds still hold out whole seamounts.
    """
    if len(sets) == 1:
        return sets[0]
    first = sets[0].attrs
    for other in sets[1:]:
        if any(str(other.attrs.get(k)) != str(first.get(k)) for k in ("patch_km", "patch_px", "candidates", "geographic")):
            raise SeamountaeError("patch files tiled with other parameters cannot be combined; tile them alike")
    samples, candidates, offset = [], [], 0
    for p in sets:
        shift = {"seamount": p["seamount"] + offset,
                 "candidate_seamount": xr.where(p["candidate_seamount"] >= 0, p["candidate_seamount"] + offset, -1)}
        p = p.assign(shift)
        offset = int(max(p["seamount"].values.max(initial=offset - 1), p["candidate_seamount"].values.max(initial=-1))) + 1
        samples.append(p[[v for v in p.data_vars if "sample" in p[v].dims]])
        candidates.append(p[[v for v in p.data_vars if "candidate" in p[v].dims]])
    merged = xr.merge([xr.concat(samples, "sample", combine_attrs="override"),
                       xr.concat(candidates, "candidate", combine_attrs="override")], combine_attrs="override")
    merged.attrs = {**first, "n_seamounts": int(len(np.unique(merged["seamount"].values))),
                    "terrain": json.dumps([g for p in sets for g in json.loads(p.attrs.get("terrain", "[]"))]),
                    "n_unseen": int(sum(int(p.attrs["n_unseen"]) for p in sets))}
    return merged
