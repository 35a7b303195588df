"""Scoring: the reconstruction-error map of a whole grid.

Every patch is cut from one global lattice. The grid is resampled to the model's pixel size
(`patch_km / patch_px`) on lattice points fixed by grid index, so any window of the grid — a band
of latitude, a column chunk, a SLURM tile — sees exactly the same patches as the whole grid does,
and windowed results equal whole-grid results. Geographic grids are processed in bands of fixed
latitude (1°), each with its own east-west scale (cos latitude), so a patch is `patch_km` wide at
any latitude. Patch centres sit every `stride_px` resampled pixels; their errors are interpolated
back to the grid's own cells.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from .grid import KM_PER_DEGREE, cell_size_km
from .model import PatchAutoencoder, masked_error, resolve_device
from .patches import MAX_NAN_FRACTION, bilinear, normalise_batch, relief_batch
from .training import conformal_score

log = logging.getLogger("seamountae")

BAND_DEG = 1.0  # latitude band height for geographic grids
OUTPUTS = ("error", "relief_m")


@dataclass(frozen=True)
class Band:
    """Grid rows [row0, row1) scored with `cols_per_px` grid columns per resampled pixel."""

    row0: int
    row1: int
    cols_per_px: float


def lattice_bands(grid: xr.DataArray, px_km: float) -> list[Band]:
    """Split the grid's rows into bands that share one east-west scale."""
    ny = grid.sizes["y"]
    dy_km, dx_km = cell_size_km(grid)
    if not int(grid.attrs.get("geographic", 0)):
        return [Band(0, ny, px_km / dx_km)]
    step_x = float(grid.x[1] - grid.x[0])
    band_of_row = np.floor(grid.y.values / BAND_DEG).astype(int)
    bands = []
    for b in np.unique(band_of_row):
        rows = np.flatnonzero(band_of_row == b)
        lat_mid = (b + 0.5) * BAND_DEG
        km_per_col = step_x * KM_PER_DEGREE * max(math.cos(math.radians(lat_mid)), 1e-3)
        bands.append(Band(int(rows[0]), int(rows[-1]) + 1, px_km / km_per_col))
    return bands


def read_window(grid: xr.DataArray, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """grid[r0:r1, c0:c1] as float32, NaN where the window leaves the grid (reads only what it needs)."""
    ny, nx = grid.shape
    out = np.full((r1 - r0, c1 - c0), np.nan, np.float32)
    rr0, rr1, cc0, cc1 = max(r0, 0), min(r1, ny), max(c0, 0), min(c1, nx)
    if rr0 < rr1 and cc0 < cc1:
        out[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = grid[rr0:rr1, cc0:cc1].values
    return out


class PatchScorer:
    """The model on a device, turning batches of raw patches (metres) into per-patch statistics."""

    def __init__(self, model: PatchAutoencoder, device: str = "auto", batch_size: int = 2048):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.batch_size = batch_size

    def __call__(self, patches: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {name: [] for name in OUTPUTS}
        with torch.inference_mode():
            for i in range(0, len(patches), self.batch_size):
                raw = patches[i : i + self.batch_size].to(self.device, non_blocking=True)
                x, valid, _ = normalise_batch(raw)
                x, valid = x[:, None], valid[:, None]
                error = masked_error(self.model(x), x, valid)
                usable = valid.flatten(1).mean(1) >= 1 - MAX_NAN_FRACTION
                out["error"].append(torch.where(usable, error, torch.nan).float().cpu())
                out["relief_m"].append(torch.where(usable, relief_batch(raw), torch.nan).float().cpu())
        return {k: torch.cat(v) if v else torch.zeros(0) for k, v in out.items()}


def score_band(grid: xr.DataArray, band: Band, scorer: PatchScorer, px_km: float, patch_px: int,
               stride_px: int, max_centres: int = 1 << 16) -> dict[str, np.ndarray]:
    """Per-cell outputs for the band's rows, on all of the grid's columns."""
    ny, nx = grid.shape
    dy_km, _ = cell_size_km(grid)
    sy, sx = px_km / dy_km, band.cols_per_px  # grid cells per resampled pixel
    step_r, step_c = stride_px * sy, stride_px * sx  # grid cells between patch centres
    half = patch_px // 2
    # Lattice rows/columns of centres needed to interpolate every cell of the band.
    m0, m1 = math.floor(band.row0 / step_r), math.ceil((band.row1 - 1) / step_r)
    k0, k1 = 0, math.ceil((nx - 1) / step_c)
    n_m, n_k = m1 - m0 + 1, k1 - k0 + 1
    stats = {name: np.full((n_m, n_k), np.nan, np.float32) for name in OUTPUTS}
    chunk_k = max(1, max_centres // n_m)
    for ka in range(k0, k1 + 1, chunk_k):
        kb = min(ka + chunk_k, k1 + 1)
        # Resampled pixel q sits at grid row (q + 0.5)·sy; centre m covers q in [m·S − half, m·S + half).
        q = np.arange(m0 * stride_px - half, m1 * stride_px + half)
        l = np.arange(ka * stride_px - half, (kb - 1) * stride_px + half)
        rows, cols = (q + 0.5) * sy, (l + 0.5) * sx
        r_lo, r_hi = math.floor(rows[0]), math.floor(rows[-1]) + 2
        c_lo, c_hi = math.floor(cols[0]), math.floor(cols[-1]) + 2
        window = read_window(grid, r_lo, r_hi, c_lo, c_hi)
        rr, cc = np.meshgrid(rows - r_lo, cols - c_lo, indexing="ij")
        resampled = torch.from_numpy(bilinear(window, rr, cc))
        views = resampled.unfold(0, patch_px, stride_px).unfold(1, patch_px, stride_px)  # (M, K, P, P), no copy
        result = scorer(views.reshape(-1, patch_px, patch_px))
        for name in OUTPUTS:
            stats[name][:, ka - k0 : kb - k0] = result[name].numpy().reshape(views.shape[:2])
    # Back to cells: each cell interpolates the four lattice centres around it.
    ii, jj = np.meshgrid(np.arange(band.row0, band.row1) / step_r - m0, np.arange(nx) / step_c - k0, indexing="ij")
    return {name: bilinear(stats[name], ii, jj) for name in OUTPUTS}


def iter_score(grid: xr.DataArray, model: PatchAutoencoder, meta: dict, stride_px: int = 2,
               device: str = "auto", batch_size: int = 2048) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
    """Score band by band: yields (rows, outputs) so callers can write each band as it is done."""
    px_km = meta["patch_km"] / meta["patch_px"]
    scorer = PatchScorer(model, device, batch_size)
    for band in lattice_bands(grid, px_km):
        yield slice(band.row0, band.row1), score_band(grid, band, scorer, px_km, meta["patch_px"], stride_px)


def score(grid: xr.DataArray, model: PatchAutoencoder, meta: dict, stride_px: int = 2, device: str = "auto",
          batch_size: int = 2048, progress: bool = False) -> xr.Dataset:
    """The score dataset of a whole grid: elevation, error, score and relief on the grid's cells."""
    shape = grid.shape
    maps = {name: np.full(shape, np.nan, np.float32) for name in OUTPUTS}
    bands = iter_score(grid, model, meta, stride_px, device, batch_size)
    if progress:
        from .training import _progress

        bands = _progress(bands, True, desc="score", unit="band", total=len(lattice_bands(grid, meta["patch_km"] / meta["patch_px"])))
    for rows, out in bands:
        for name in OUTPUTS:
            maps[name][rows] = out[name]
    return score_dataset(grid, maps, meta, stride_px)


def score_dataset(grid: xr.DataArray, maps: dict[str, np.ndarray], meta: dict, stride_px: int) -> xr.Dataset:
    elevation = np.asarray(grid.values, np.float32)
    missing = ~np.isfinite(elevation)
    error = np.where(missing, np.nan, maps["error"])
    coords = {"y": grid.y, "x": grid.x}
    dims = ("y", "x")
    ds = xr.Dataset(
        {
            "elevation": (dims, elevation, {"units": "m", "long_name": "elevation (positive up)", "positive": "up"}),
            "error": (dims, error, {"units": "1", "long_name": "reconstruction error (fraction of patch variance)"}),
            "score": (dims, conformal_score(error, meta["calibration"]["errors"]),
                      {"units": "1", "long_name": "seamount-likeness: conformal p-value against held-out seamounts"}),
            "relief_m": (dims, np.where(missing, np.nan, maps["relief_m"]),
                         {"units": "m", "long_name": "patch centre relief above the patch's outer ring"}),
        },
        coords=coords,
        attrs={
            "seamountae_kind": "score",
            "patch_km": float(meta["patch_km"]),
            "patch_px": int(meta["patch_px"]),
            "stride_px": int(stride_px),
            "geographic": int(grid.attrs.get("geographic", 0)),
            "crs": grid.attrs.get("crs", ""),
        },
    )
    return ds
