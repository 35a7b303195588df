"""Patches: the one patch arithmetic. Square windows of a physical size (km) cut out of a grid,
low-passed and resampled to the model's fixed pixel size, normalised, and their relief.

Patch size is physical so that a model trained on a 1′ grid scores a 2′ or 15″ grid correctly:
every patch is `patch_km` across and `patch_px` pixels wide, whatever the grid spacing.

Layer 3, arithmetic: imports layers 1-3 only.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import xarray as xr
import torch
from scipy import ndimage

from .geometry import GridGeometry
from .grid import read_window
from .threads import threaded_map

# A patch with more missing cells than this (land, gaps, outside the grid) is not used or scored.
MAX_NAN_FRACTION = 0.25
# Standard deviations below this (metres) count as flat: normalisation would only amplify noise.
MIN_STD_M = 1.0


def lowpass_sigma(px_km: np.ndarray, cell_km: float | np.ndarray) -> np.ndarray:
    """Gaussian low-pass width (in cells) before resampling cells of `cell_km` to pixels of `px_km`.

    Point-sampling a finer grid aliases its roughness into the patch; the anti-aliasing rule of
    image downscaling, sigma = (factor − 1) / 2, makes a 15″ grid look like the same area at 1′.
    No filter when the pixels are no larger than the cells.
    """
    return np.maximum(0.0, (np.asarray(px_km, float) / np.asarray(cell_km, float) - 1.0) / 2.0)


def lowpassed_window(grid: xr.DataArray, r0: int, r1: int, c0: int, c1: int, sigma_r: float, sigma_c: float,
                     wrap: bool = False) -> np.ndarray:
    """grid[r0:r1, c0:c1] low-passed (`lowpass`), read with the margin the filter reaches, so a
    window's cells come out as the whole grid's would (read_window where both widths are 0)."""
    if not (sigma_r > 0 or sigma_c > 0):
        return read_window(grid, r0, r1, c0, c1, wrap)
    pad_r, pad_c = int(math.ceil(4 * sigma_r)) + 1, int(math.ceil(4 * sigma_c)) + 1
    window = lowpass(read_window(grid, r0 - pad_r, r1 + pad_r, c0 - pad_c, c1 + pad_c, wrap), sigma_r, sigma_c)
    return window[pad_r : pad_r + r1 - r0, pad_c : pad_c + c1 - c0]


# A patch narrower than this many grid cells holds too little of a seamount's shape to judge it.
MIN_PATCH_CELLS = 12


def resolution_problem(grid: xr.DataArray, meta: dict) -> str | None:
    """One line saying why the grid is too coarse for the model's patches (None if it is not)."""
    smallest_km = min([float(meta["patch_km"]) * min(meta.get("pyramid", [1.0])), *meta["candidates"]["window_km"]])
    cell_km = max(GridGeometry.of(grid).cell_size_km())
    cells = smallest_km / cell_km
    if cells >= MIN_PATCH_CELLS:
        return None
    return (f"{grid.attrs.get('source') or 'grid'}: the model's smallest patch ({smallest_km:g} km) spans only "
            f"{cells:.1f} cells of {cell_km:.2g} km, fewer than {MIN_PATCH_CELLS}, so seamounts smaller than about "
            f"{MIN_PATCH_CELLS * cell_km / 6:.0f} km across cannot be judged and scores are unreliable; score a finer "
            "grid, or use a model tiled with a larger [tile] window_km")


def sample_patches(
    grid: xr.DataArray,
    x: np.ndarray,
    y: np.ndarray,
    patch_km: float,
    patch_px: int,
    scale: np.ndarray | float = 1.0,
    share: int = 1,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Resample `patch_px`² patches of `patch_km` (× `scale`) centred on grid coordinates (x, y).

    Low-passed first where the pixels are larger than the grid's cells (`lowpass_sigma`, the
    normalised Gaussian of `lowpass`), then bilinear; cells outside the grid or NaN give NaN. Each
    patch is cut from its own cells only (read only there, so a lazily opened grid is never loaded
    whole, and a patch does not depend on how much grid lies around it). Returns float32
    (n, patch_px, patch_px), row 0 at the south edge (the grid's ascending y).

    The low-pass is evaluated only at the cells the bilinear samples read, as two matrix products
    per patch (`_lowpass_rows`), batched on `device`: the same numbers as low-passing the whole
    window with ndimage and sampling it (`lowpassed_window`, `bilinear`), to float32 rounding.

    share: each run of this many consecutive patches (a candidate and its neighbours) is read as
    one window and computed as one batch; each patch is still as it is alone.
    """
    x = np.atleast_1d(np.asarray(x, float))
    y = np.atleast_1d(np.asarray(y, float))
    scale = np.broadcast_to(np.asarray(scale, float), x.shape)
    geometry = GridGeometry.of(grid)
    per_km_y, per_km_x = geometry.cells_per_km(y)
    # Offsets of pixel centres from the patch centre, in km.
    offsets = (np.arange(patch_px) - (patch_px - 1) / 2) * (patch_km / patch_px)
    px_km = patch_km * scale / patch_px
    sigma_r, sigma_c = lowpass_sigma(px_km, 1 / per_km_y), lowpass_sigma(px_km, 1 / per_km_x)
    out = np.full((x.size, patch_px, patch_px), np.nan, np.float32)
    wrap = geometry.wraps  # a global grid: patches on the antimeridian see across it
    row, col = geometry.fractional_index(x, y)
    rows = row[:, None] + offsets[None, :] * (scale * per_km_y)[:, None]
    cols = col[:, None] + offsets[None, :] * (scale * per_km_x)[:, None]
    # Each patch's cells: those its pixels fall between (+1), and the low-pass's reach around them.
    lo_r, lo_c = np.floor(rows[:, 0]).astype(int), np.floor(cols[:, 0]).astype(int)
    pad_r, pad_c = _reach(sigma_r), _reach(sigma_c)
    height = np.floor(rows[:, -1]).astype(int) + 2 - lo_r + 2 * pad_r
    width = np.floor(cols[:, -1]).astype(int) + 2 - lo_c + 2 * pad_c
    dev = torch.device(device)

    def sample_run(first: int) -> None:
        run = slice(first, min(first + share, x.size))
        top, left = lo_r[run] - pad_r[run], lo_c[run] - pad_c[run]
        h, w = int(height[run].max()), int(width[run].max())
        r0, c0 = int(top.min()), int(left.min())
        values = read_window(grid, r0, int(top.max()) + h, c0, int(left.max()) + w, wrap)
        # Validity and centring in numpy, once per window (several times torch's speed on the CPU);
        # centred on the window's mean, float32 keeps millimetres at any depth. A finite sum means
        # no cell is missing: the common case needs no validity test.
        level = values.sum(dtype=np.float64) / max(values.size, 1)
        boxes = np.column_stack([top - r0, left - c0])
        holed = np.zeros(len(boxes), bool)  # the patches whose box may hold a missing cell
        if np.isfinite(level):
            filled, mask = values - np.float32(level), None
        else:
            valid = np.isfinite(values)
            level = values.mean(where=valid, dtype=np.float64) if valid.any() else 0.0
            filled = np.where(valid, values - np.float32(level), np.float32(0))
            mask = torch.from_numpy(valid.astype(np.float32)).to(dev)
            holed = _may_hold(~valid, boxes, h, w)
        filled = torch.from_numpy(filled).to(dev)
        on = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dev)  # noqa: E731
        # The patches without a missing cell skip the validity weights; those with one take them.
        for pick, weights in ((~holed, None), (holed, mask)):
            if not pick.any():
                continue
            cut = lambda a: torch.stack([a[i : i + h, j : j + w] for i, j in boxes[pick]])  # noqa: E731
            at = np.arange(run.start, run.stop)[pick]
            samples = _lowpassed_samples(cut(filled), None if weights is None else cut(weights),
                                         on(rows[at] - top[pick, None]), on(cols[at] - left[pick, None]),
                                         on(sigma_r[at]), on(sigma_c[at]), on(pad_r[at]), on(pad_c[at]))
            out[at] = samples.cpu().numpy() + np.float32(level)

    # Each run writes only its own patches. On the CPU the runs share torch's threads: one run's
    # numpy steps (reading, centring) overlap another's products. A GPU takes them in turn.
    runs = range(0, x.size, share)
    if dev.type == "cpu":
        threaded_map(sample_run, runs)
    else:
        for first in runs:
            sample_run(first)
    return out


def _may_hold(flags: np.ndarray, corners: np.ndarray, h: int, w: int) -> np.ndarray:
    """Whether each h × w box with top-left `corners` (n, 2) may hold one of `flags`: some row and some
    column of it hold one (exact for a missing edge or strip, at most a few boxes too many for a gap)."""
    rows = np.concatenate([[0], flags.any(1).cumsum()])
    cols = np.concatenate([[0], flags.any(0).cumsum()])
    r, c = corners[:, 0], corners[:, 1]
    return (rows[r + h] > rows[r]) & (cols[c + w] > cols[c])


# ndimage.gaussian_filter's kernel reaches int(TRUNCATE * sigma + 0.5) cells.
TRUNCATE = 4.0


def _reach(sigma: np.ndarray) -> np.ndarray:
    """Cells a low-pass of width `sigma` reads on each side of a cell (ndimage's kernel radius)."""
    return (TRUNCATE * np.asarray(sigma, float) + 0.5).astype(int)


def _lowpass_rows(cells: torch.Tensor, sigma: torch.Tensor, reach: torch.Tensor, size: int) -> torch.Tensor:
    """(n, m, size) weights: row j of patch i is ndimage's normalised Gaussian kernel of width
    sigma[i] (reaching reach[i] cells, `_reach`) centred on cell cells[i, j] (a delta where sigma is 0).

    Each patch's kernel is evaluated once over its taps and scattered into the rows: the rows are
    banded, and evaluating the Gaussian over all `size` cells cost more than the products using it.
    The callers' windows hold every cell a kernel reaches, so clipped taps carry weight 0.
    """
    taps = torch.arange(-int(reach.max()), int(reach.max()) + 1, device=cells.device, dtype=torch.float32)
    s = sigma[:, None].float()
    kernel = torch.where(s > 0, torch.exp(-0.5 * (taps / s.clamp_min(1e-12)).square()), (taps == 0).float())
    kernel = torch.where(taps.abs() <= reach[:, None], kernel, 0.0)
    kernel = kernel / kernel.sum(1, keepdim=True)
    n, m = cells.shape
    at = (cells.long()[:, :, None] + taps.long()).clamp_(0, size - 1)
    rows = torch.zeros((n, m, size), device=cells.device)
    return rows.scatter_add_(2, at, kernel[:, None, :].expand(n, m, -1).contiguous())


def _lowpassed_samples(filled: torch.Tensor, mask: torch.Tensor | None, rows: torch.Tensor, cols: torch.Tensor,
                       sigma_r: torch.Tensor, sigma_c: torch.Tensor, reach_r: torch.Tensor,
                       reach_c: torch.Tensor) -> torch.Tensor:
    """(n, p, p) bilinear samples at fractional (rows × cols) of the `lowpass` of (n, h, w) cells:
    `filled` holds them with missing cells as 0, `mask` is 1 where they are valid (None: all are).

    The low-pass is needed only at the 2p × 2p cells the samples fall between, and it is separable:
    there it is Wr · cells · Wcᵀ, with the valid cells' weight Wr · valid · Wcᵀ.
    """
    n, h, w = filled.shape
    p = rows.shape[1]
    fr, fc = torch.floor(rows), torch.floor(cols)
    at_r = torch.cat([fr, fr + 1], 1).long()  # (n, 2p): the cells the samples fall between
    at_c = torch.cat([fc, fc + 1], 1).long()
    wr, wc = _lowpass_rows(at_r, sigma_r, reach_r, h), _lowpass_rows(at_c, sigma_c, reach_c, w)
    total = wr @ filled @ wc.transpose(1, 2)  # (n, 2p, 2p)
    if mask is None:
        smooth = total / (wr.sum(2)[:, :, None] * wc.sum(2)[:, None, :])  # Wr · 1 · Wcᵀ
    else:
        weight = wr @ mask @ wc.transpose(1, 2)
        own = mask[torch.arange(n, device=mask.device)[:, None, None], at_r[:, :, None], at_c[:, None, :]] > 0
        smooth = torch.where(own & (weight >= 0.5), total / weight.clamp_min(1e-12), torch.nan)
    # Bilinear between the four neighbours; a sample touching a missing cell is missing.
    tr, tc = (rows - fr).float(), (cols - fc).float()
    out = torch.zeros((n, p, p), device=filled.device)
    support = torch.zeros((n, p, p), device=filled.device)
    for dr, wy in ((0, 1 - tr), (p, tr)):
        for dc, wx in ((0, 1 - tc), (p, tc)):
            part = smooth[:, dr : dr + p, dc : dc + p]
            share = wy[:, :, None] * wx[:, None, :]
            ok = torch.isfinite(part)
            out += share * torch.where(ok, part, 0)
            support += share * ok
    return torch.where(support >= 0.999, out, torch.nan)


def lowpass(values: np.ndarray, sigma_rows: float, sigma_cols: float) -> np.ndarray:
    """Gaussian smoothing that ignores missing cells (normalised convolution); a cell whose
    neighbourhood is mostly missing stays missing."""
    valid = np.isfinite(values)
    weight = ndimage.gaussian_filter(valid.astype(np.float32), (sigma_rows, sigma_cols), mode="constant", cval=0.0)
    total = ndimage.gaussian_filter(np.where(valid, values, 0.0).astype(np.float32), (sigma_rows, sigma_cols),
                                    mode="constant", cval=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(valid & (weight >= 0.5), total / weight, np.nan).astype(np.float32)


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


class Normaliser:
    """The one patch normalisation: each patch's best-fit plane removed, then divided by its standard deviation.

    Plane removal keeps a seamount on a regional slope looking like a seamount; scaling by the
    patch's own standard deviation makes the reconstruction error a fraction of the patch's
    variance, so flat noisy seafloor (whose variance is all unexplainable) scores badly, not well.
    Training, calibration, the candidates' judgement and the score map all call it, so an error
    means the same wherever it is computed. The plane is fitted in float64 (float32 matrix
    products round differently for different batch sizes); patches without missing cells take a
    faster path through the same arithmetic (the fit is then one fixed projection).
    """

    def __init__(self, patch_px: int, device: torch.device | str = "cpu"):
        design = _plane_design(patch_px).to(device)
        self._design, self._design_t = design, design.T.contiguous()
        self._design_outer = (design[:, :, None] * design[:, None, :]).reshape(-1, 9).double()
        self._ridge = torch.eye(3, device=design.device, dtype=torch.float64) * 1e-6
        ata = design.double().T @ design.double() + self._ridge
        self._fit = (design.double() @ torch.linalg.inv(ata)).float()  # coefficients of a complete patch: z @ _fit
        self._neg_design_t = -self._design_t

    def __call__(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(normalised with NaN → 0, valid as 0/1, std in metres) of patches flattened to (n, p²), metres with NaN."""
        valid = torch.isfinite(flat)
        w = valid.to(flat.dtype)
        count = w.sum(1).clamp_min(1)
        z = torch.where(valid, flat, 0)
        z = z - (z.sum(1) / count)[:, None] * w  # centre first: float32 keeps mm precision at 5 km depth
        ata = (w.double() @ self._design_outer).view(-1, 3, 3) + self._ridge
        coef = torch.linalg.solve(ata, z.double() @ self._design.double()).to(z.dtype)  # z·A = (w·z)·A: z is 0 where invalid
        resid = (z - coef @ self._design_t) * w
        std = torch.sqrt(resid.square().sum(1) / count)
        return resid / std.clamp_min(MIN_STD_M)[:, None], w, std

    def complete(self, flat: torch.Tensor) -> torch.Tensor:
        """The normalised patches of (n, p²) patches without any missing cell (the map's common case)."""
        z = flat - flat.mean(1, keepdim=True)
        resid = torch.addmm(z, z @ self._fit, self._neg_design_t)  # z − A·coef, coef = (AᵀA)⁻¹Aᵀz
        std = torch.linalg.vector_norm(resid, dim=1) / math.sqrt(flat.shape[1])
        return resid.mul_((1 / std.clamp_min(MIN_STD_M))[:, None])


@functools.lru_cache(maxsize=8)
def normaliser(patch_px: int, device: str = "cpu") -> Normaliser:
    return Normaliser(patch_px, device)


def normalise_batch(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`Normaliser` on (n, p, p) patches in metres with NaN (torch, any device); returns (normalised with
    NaN → 0, valid as 0/1, std in metres), the first two (n, p, p)."""
    n, p, _ = patches.shape
    x, w, std = normaliser(p, str(patches.device))(patches.reshape(n, -1))
    return x.reshape(n, p, p), w.reshape(n, p, p), std


def normalise(patches: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy front end of `normalise_batch` (the same arithmetic for training and scoring)."""
    out, valid, std = normalise_batch(torch.from_numpy(np.ascontiguousarray(patches, np.float32)))
    return out.numpy(), valid.numpy().astype(bool), std.numpy()


class Relief:
    """Relief of each patch's centre above its surroundings, in metres: the highest cell within an
    eighth of the width of the centre minus the median of the outer ring (beyond 0.4 of the
    width), the measure the reference catalogue's grid_relief_m uses. The map's `relief_m`."""

    def __init__(self, patch_px: int, device: torch.device | str = "cpu"):
        u = (torch.arange(patch_px) - (patch_px - 1) / 2) / patch_px
        r = torch.hypot(u[:, None], u[None, :]).flatten()
        self._centre = torch.nonzero(r <= 0.125).flatten().to(device)
        self._ring = torch.nonzero(r >= 0.4).flatten().to(device)

    def __call__(self, flat: torch.Tensor, complete: bool = False) -> torch.Tensor:
        """Of patches flattened to (n, p²); `complete`: no cell is missing (a faster path, the same numbers)."""
        centre, ring = flat.index_select(1, self._centre), flat.index_select(1, self._ring)
        if complete and ring.device.type == "cpu":
            # The lower median, as torch.median takes it; numpy's selection is ~10x faster than a sort.
            k = (ring.shape[1] - 1) // 2
            return centre.amax(1) - torch.from_numpy(np.partition(ring.numpy(), k, axis=1)[:, k])
        top = torch.nan_to_num(centre, nan=-torch.inf).amax(1)
        base = torch.nanmedian(ring, dim=1).values
        return torch.where(torch.isfinite(top), top - base, torch.nan)


def relief_batch(patches: torch.Tensor) -> torch.Tensor:
    """`Relief` of (n, p, p) patches in metres with NaN."""
    n, p, _ = patches.shape
    return Relief(p, patches.device)(patches.reshape(n, -1))
