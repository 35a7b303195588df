"""A traditional seamount detector to compare against: residual relief above a large median filter.

The grid minus its `window_km` running median is the residual relief; every connected blob of
cells whose residual exceeds `min_residual_m` is one seamount, at its highest cell. This is the
classic approach (e.g. relief above a regional trend) that the autoencoder has to beat.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import ndimage

from seamountae.geometry import GridGeometry


def residual_relief(grid: xr.DataArray, window_km: float = 60.0) -> np.ndarray:
    z = grid.values.astype(np.float32)
    dy_km, dx_km = GridGeometry.of(grid).cell_size_km()
    size = (max(3, int(round(window_km / dy_km)) | 1), max(3, int(round(window_km / dx_km)) | 1))
    # Median of valid cells only: fill gaps with the global median so land/holes don't drag it.
    filled = np.where(np.isfinite(z), z, np.nanmedian(z))
    return z - ndimage.median_filter(filled, size=size, mode="nearest")


def traditional_detect(grid: xr.DataArray, min_residual_m: float = 500.0, window_km: float = 60.0,
                       residual: np.ndarray | None = None) -> pd.DataFrame:
    """One summit per blob of residual relief above `min_residual_m`.

    `residual` may be given (from `residual_relief(grid, window_km)`) to try several thresholds on
    one grid without recomputing the median filter.
    """
    if residual is None:
        residual = residual_relief(grid, window_km)
    with np.errstate(invalid="ignore"):
        blobs, n = ndimage.label(residual > min_residual_m)
    if n == 0:
        return pd.DataFrame({"lon": pd.Series(dtype=float), "lat": pd.Series(dtype=float),
                             "height_m": pd.Series(dtype=float)})
    z = np.where(np.isfinite(grid.values), grid.values, -np.inf)
    tops = np.asarray(ndimage.maximum_position(z, blobs, index=np.arange(1, n + 1)), int)
    return pd.DataFrame({
        "lon": grid.x.values[tops[:, 1]],
        "lat": grid.y.values[tops[:, 0]],
        "height_m": residual[tops[:, 0], tops[:, 1]],
    })
