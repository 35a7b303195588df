"""Patches: cut square windows of a physical size (km) out of a grid, resample them to the model's
fixed pixel size, normalise them, and keep them in a patch file.

Patch size is physical so that a model trained on a 1′ grid scores a 2′ or 15″ grid correctly:
every patch is `patch_km` across and `patch_px` pixels wide, whatever the grid spacing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
import torch
from scipy import ndimage

from .config import default
from .errors import SeamountaeError
from .grid import KM_PER_DEGREE, cell_size_km
from .morphology import measure_at_own_scale

# A patch with more missing cells than this (land, gaps, outside the grid) is not used or scored.
MAX_NAN_FRACTION = 0.25
# Standard deviations below this (metres) count as flat: normalisation would only amplify noise.
MIN_STD_M = 1.0


def _km_to_index(grid: xr.DataArray, lat: float | np.ndarray):
    """Grid cells per km along y and x at latitude `lat` (the local scale for geographic grids)."""
    lat = np.asarray(lat, float)
    dy_km, dx_km = cell_size_km(grid)
    if int(grid.attrs.get("geographic", 0)):
        dx_km = float(grid.x[1] - grid.x[0]) * KM_PER_DEGREE * np.cos(np.radians(lat))
    return np.full(lat.shape, 1.0 / dy_km), np.broadcast_to(1.0 / dx_km, lat.shape)


def sample_patches(
    grid: xr.DataArray,
    x: np.ndarray,
    y: np.ndarray,
    patch_km: float,
    patch_px: int,
    scale: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Resample `patch_px`² patches of `patch_km` (× `scale`) centred on grid coordinates (x, y).

    Bilinear; cells outside the grid or NaN give NaN. Returns float32 (n, patch_px, patch_px),
    row 0 at the south edge (the grid's ascending y).
    """
    x = np.atleast_1d(np.asarray(x, float))
    y = np.atleast_1d(np.asarray(y, float))
    scale = np.broadcast_to(np.asarray(scale, float), x.shape)
    x0, y0 = float(grid.x[0]), float(grid.y[0])
    step_x, step_y = float(grid.x[1] - grid.x[0]), float(grid.y[1] - grid.y[0])
    per_km_y, per_km_x = _km_to_index(grid, y)
    # Offsets of pixel centres from the patch centre, in km.
    offsets = (np.arange(patch_px) - (patch_px - 1) / 2) * (patch_km / patch_px)
    col = (x - x0) / step_x
    row = (y - y0) / step_y
    rows = row[:, None, None] + offsets[None, :, None] * (scale * per_km_y)[:, None, None]
    cols = col[:, None, None] + offsets[None, None, :] * (scale * per_km_x)[:, None, None]
    rows, cols = np.broadcast_arrays(rows, cols)
    return bilinear(grid.values, rows, cols)


def bilinear(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a 2-D array at fractional indices; NaN outside or next to NaN."""
    valid = np.isfinite(values)
    filled = np.where(valid, values, 0.0).astype(np.float32)
    coords = np.stack([rows.ravel(), cols.ravel()])
    out = ndimage.map_coordinates(filled, coords, order=1, mode="constant", cval=np.nan, prefilter=False)
    weight = ndimage.map_coordinates(valid.astype(np.float32), coords, order=1, mode="constant", cval=0.0)
    # A sample touching a missing cell is missing: partial weights would bias heights toward 0.
    out[weight < 0.999] = np.nan
    return out.reshape(rows.shape).astype(np.float32)


def _plane_design(patch_px: int) -> torch.Tensor:
    u = torch.linspace(-1, 1, patch_px)
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    return torch.stack([torch.ones_like(xx), xx, yy], dim=-1).reshape(-1, 3)


def normalise_batch(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Remove each patch's best-fit plane and divide by its standard deviation (torch, any device).

    Plane removal keeps a seamount on a regional slope looking like a seamount; scaling by the
    patch's own standard deviation makes the reconstruction error a fraction of the patch's
    variance, so flat noisy seafloor (whose variance is all unexplainable) scores badly, not well.
    Input (n, p, p) metres with NaN; returns (normalised with NaN → 0, valid as 0/1, std in metres).
    """
    n, p, _ = patches.shape
    flat = patches.reshape(n, -1)
    valid = torch.isfinite(flat)
    w = valid.to(flat.dtype)
    count = w.sum(1).clamp_min(1)
    z = torch.where(valid, flat, 0)
    z = z - ((z * w).sum(1) / count)[:, None] * w  # centre first: float32 keeps mm precision at 5 km depth
    design = _plane_design(p).to(flat)
    ata = torch.einsum("nk,ki,kj->nij", w, design, design) + torch.eye(3, device=flat.device) * 1e-6
    atb = torch.einsum("nk,ki->ni", w * z, design)
    coef = torch.linalg.solve(ata, atb)
    resid = (z - coef @ design.T) * w
    std = torch.sqrt((resid**2).sum(1) / count)
    out = resid / std.clamp_min(MIN_STD_M)[:, None]
    return out.reshape(n, p, p), w.reshape(n, p, p), std


def normalise(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy front end of `normalise_batch` (the same arithmetic for training and scoring)."""
    out, valid, std = normalise_batch(torch.from_numpy(np.ascontiguousarray(patches, np.float32)))
    return out.numpy(), valid.numpy().astype(bool), std.numpy()


def _relief_masks(patch_px: int) -> tuple[torch.Tensor, torch.Tensor]:
    u = (torch.arange(patch_px) - (patch_px - 1) / 2) / patch_px
    r = torch.hypot(u[:, None], u[None, :]).flatten()
    return r <= 0.125, r >= 0.4


def relief_batch(patches: torch.Tensor) -> torch.Tensor:
    """Relief of each patch's centre above its surroundings, in metres.

    Highest cell within an eighth of the width of the centre minus the median of the outer ring
    (beyond 0.4 of the width) — the measure the reference catalogue's grid_relief_m uses.
    """
    n, p, _ = patches.shape
    centre, ring = _relief_masks(p)
    flat = patches.reshape(n, -1)
    top = torch.nan_to_num(flat[:, centre.to(flat.device)], nan=-torch.inf).amax(1)
    base = torch.nanmedian(flat[:, ring.to(flat.device)], dim=1).values
    return torch.where(torch.isfinite(top), top - base, torch.nan)


def snap_to_summits(grid: xr.DataArray, x: np.ndarray, y: np.ndarray, radius_km: float) -> tuple[np.ndarray, np.ndarray]:
    """Move each point to the highest valid grid cell within `radius_km` (points off the grid stay)."""
    if radius_km <= 0:
        return x, y
    per_km_y, per_km_x = _km_to_index(grid, y)
    col = np.rint((x - float(grid.x[0])) / float(grid.x[1] - grid.x[0])).astype(int)
    row = np.rint((y - float(grid.y[0])) / float(grid.y[1] - grid.y[0])).astype(int)
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
            sy[i], sx[i] = float(grid.y[r0 + k[0]]), float(grid.x[c0 + k[1]])
    return sx, sy


def seamount_sizes(grid: xr.DataArray, x: np.ndarray, y: np.ndarray, patch_km: float, pyramid: tuple[float, ...],
                   radius_ratio: float) -> np.ndarray:
    """Patch width for each seamount relative to `patch_km`: its own scale, as `detect` measures it."""
    lo, hi = min(pyramid), max(pyramid)
    if radius_ratio <= 0 or lo == hi:
        return np.ones(len(x))
    per_km_y, per_km_x = _km_to_index(grid, y)
    col = np.rint((x - float(grid.x[0])) / float(grid.x[1] - grid.x[0])).astype(int)
    row = np.rint((y - float(grid.y[0])) / float(grid.y[1] - grid.y[0])).astype(int)
    ny, nx = grid.shape
    sizes = np.ones(len(x))
    for i, (r, c) in enumerate(zip(row, col)):
        if 0 <= r < ny and 0 <= c < nx:
            found = measure_at_own_scale(grid.values, r, c, 1 / per_km_y[i], 1 / per_km_x[i], patch_km,
                                         lo * patch_km, hi * patch_km, radius_ratio)
            sizes[i] = found["window_km"] / patch_km
    return sizes


def tile(
    grid: xr.DataArray,
    catalogue: pd.DataFrame,
    patch_km: float = default("tile", "patch_km"),
    patch_px: int = default("tile", "patch_px"),
    pyramid: tuple[float, ...] = default("tile", "pyramid"),
    radius_ratio: float = default("tile", "radius_ratio"),
    shifts_px: int = default("tile", "shifts_px"),
    scales: tuple[float, ...] = default("tile", "scales"),
    snap_km: float = default("tile", "snap_km"),
) -> xr.Dataset:
    """Training patches centred on catalogued seamounts, sized to them, with shift and scale augmentations.

    Catalogue positions (often from satellite gravity) can sit kilometres off the summit in the
    grid, so each centre is first moved to the highest cell within `snap_km`: the model learns
    seamounts centred the way `detect` finds them, on their summits. Each patch is `radius_ratio`
    basal radii wide (kept between the smallest and largest pyramid level × patch_km), so the
    model learns the shape of a seamount, not its size; `score` searches every pyramid level.
    Each seamount gives (2·shifts_px+1)² × len(scales) patches (offsets in patch pixels); the
    dihedral flips and rotations are added at training time. `seamount` groups the augmentations of
    one seamount so that calibration can hold out whole seamounts.
    """
    if patch_px < 8 or patch_px % 8:
        raise SeamountaeError(f"patch_px={patch_px}: the autoencoder needs a multiple of 8; use 32")
    if not patch_km > 0:
        raise SeamountaeError(f"patch_km={patch_km}: must be positive; use 48")
    if not pyramid or min(pyramid) <= 0:
        raise SeamountaeError(f"pyramid={list(pyramid)}: levels must be positive multiples of patch_km; use [0.25, 0.5, 1, 2]")
    shift = np.arange(-shifts_px, shifts_px + 1)
    sy, sx, sc = np.meshgrid(shift, shift, np.asarray(scales, float), indexing="ij")
    sy, sx, sc = sy.ravel(), sx.ravel(), sc.ravel()
    n_seamounts, n_aug = len(catalogue), sy.size
    x0, y0 = snap_to_summits(grid, catalogue["lon"].to_numpy(float), catalogue["lat"].to_numpy(float), snap_km)
    size = np.repeat(seamount_sizes(grid, x0, y0, patch_km, tuple(pyramid), radius_ratio), n_aug)
    scale = size * np.tile(sc, n_seamounts)
    px_km = patch_km * scale / patch_px
    lon, lat = np.repeat(x0, n_aug), np.repeat(y0, n_aug)
    per_km_y, per_km_x = _km_to_index(grid, lat)
    step_x, step_y = float(grid.x[1] - grid.x[0]), float(grid.y[1] - grid.y[0])
    cx = lon + np.tile(sx, n_seamounts) * px_km * per_km_x * step_x
    cy = lat + np.tile(sy, n_seamounts) * px_km * per_km_y * step_y
    data = sample_patches(grid, cx, cy, patch_km, patch_px, scale)
    seamount = np.repeat(np.arange(n_seamounts), n_aug)
    nan_fraction = np.isnan(data).reshape(len(data), -1).mean(1)
    keep = nan_fraction <= MAX_NAN_FRACTION
    if not keep.any():
        raise SeamountaeError(
            f"{grid.attrs.get('source') or 'grid'}: every catalogued seamount's patch is more than "
            f"{MAX_NAN_FRACTION:.0%} missing (land, gaps or grid edge); use a larger grid or a smaller --patch-km"
        )
    ds = xr.Dataset(
        {
            "patch": (("sample", "v", "u"), data[keep], {"units": "m", "long_name": "elevation, resampled"}),
            "x": ("sample", cx[keep], {"long_name": "patch centre x (grid coordinates)"}),
            "y": ("sample", cy[keep], {"long_name": "patch centre y (grid coordinates)"}),
            "scale": ("sample", scale[keep], {"long_name": "width of this patch relative to patch_km"}),
            "seamount": ("sample", seamount[keep], {"long_name": "row of the catalogue this patch is centred on"}),
        },
        attrs={
            "patch_km": float(patch_km),
            "patch_px": int(patch_px),
            "pyramid": np.asarray(pyramid, float),
            "radius_ratio": float(radius_ratio),
            "geographic": int(grid.attrs.get("geographic", 0)),
            "n_seamounts": int(len(np.unique(seamount[keep]))),
            "seamountae_kind": "patches",
        },
    )
    return ds
