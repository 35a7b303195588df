"""Measuring one edifice on the grid: height above its surroundings, footprint, basal radius.

Used by `tile` (to size each training patch to its seamount) and by `detect` (to describe what it
found), so training and detection see seamounts the same way.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def measure(elevation: np.ndarray, row: int, col: int, dy_km: float, dx_km: float, window_km: float) -> dict:
    """Height, footprint area and basal radius of the edifice whose summit is cell (row, col).

    The base is the median of a ring 0.4–0.5 `window_km` from the summit; the footprint is the
    cells connected to the summit that stand more than 10 % of the height above the base, within
    half the window; the basal radius is the radius of a disc of the footprint's area.
    `missing_km` is how far the nearest missing cell (land, gap) lies from the summit.
    """
    ry, rx = int(math.ceil(0.5 * window_km / dy_km)), int(math.ceil(0.5 * window_km / dx_km))
    r0, c0 = max(row - ry, 0), max(col - rx, 0)
    win = elevation[r0 : row + ry + 1, c0 : col + rx + 1]
    yy, xx = np.ogrid[r0 - row : r0 - row + win.shape[0], c0 - col : c0 - col + win.shape[1]]
    dist = np.hypot(yy * dy_km, xx * dx_km)
    ring = win[(dist >= 0.4 * window_km) & (dist <= 0.5 * window_km)]
    ring = ring[np.isfinite(ring)]
    if ring.size == 0 or not np.isfinite(elevation[row, col]):
        return {"height_m": np.nan, "area_km2": np.nan, "basal_radius_km": np.nan, "missing_km": 0.0}
    base = float(np.median(ring))
    height = float(elevation[row, col]) - base
    above = np.isfinite(win) & (win >= base + 0.1 * height) & (dist <= 0.5 * window_km)
    parts, _ = ndimage.label(above)
    area = float((parts == parts[row - r0, col - c0]).sum()) * dy_km * dx_km
    missing = ~np.isfinite(win)
    return {
        "height_m": height,
        "area_km2": area,
        "basal_radius_km": math.sqrt(area / math.pi),
        "missing_km": float(dist[missing].min()) if missing.any() else math.inf,
    }


def measure_at_own_scale(elevation: np.ndarray, row: int, col: int, dy_km: float, dx_km: float,
                         first_window_km: float, min_window_km: float, max_window_km: float,
                         radius_ratio: float) -> dict:
    """`measure` in a window sized to the edifice: `radius_ratio` basal radii, kept within bounds.

    The base is only right when the ring sits just outside the edifice, so measure once in
    `first_window_km`, then again in a window of `radius_ratio` times the radius found. The
    result carries `window_km`, the width used (the seamount's own patch width).
    """
    window = first_window_km
    first = found = measure(elevation, row, col, dy_km, dx_km, window)
    if radius_ratio > 0 and np.isfinite(found["basal_radius_km"]):
        window = float(np.clip(radius_ratio * found["basal_radius_km"], min_window_km, max_window_km))
        found = measure(elevation, row, col, dy_km, dx_km, window)
    return {**found, "window_km": window, "height_m": first["height_m"]}
