"""The scoring lattice: the reconstruction-error map of a whole grid, window by window.

Every patch is cut from one global lattice. The grid is resampled to the model's pixel size
(`patch_km / patch_px`) on lattice points fixed by grid index, so any window of the grid — a block
of rows, a column chunk, a SLURM tile — sees exactly the same patches as the whole grid does,
and windowed results equal whole-grid results. Geographic grids are processed in bands of fixed
latitude (1°), each with its own east-west scale (cos latitude), so a patch is `patch_km` wide at
any latitude. Patch centres sit every `stride_px` resampled pixels; their errors are interpolated
back to the grid's own cells. A global geographic grid wraps in longitude: patches near ±180° see
the cells across the antimeridian.

Streaming: each band is processed in blocks of centre rows and, within a block, in column windows
of bounded size. A window is read from the grid (which may be a lazily opened file, see
`grid.open_grid`) with a halo of half a patch, resampled, cut into patches by strided views (no
copy per patch, no Python loop per patch) and scored in batches by the model runner (runner.py),
while a second thread reads the next window (`read_ahead`). Cells whose four surrounding centres
are done are interpolated and handed on (`iter_score`) in tiles aligned to the score file's chunks,
so memory depends on the window size, not on the grid size.

Layer 3, arithmetic: imports layers 1-3 only.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from .config import default
from .geometry import GridGeometry
from .model import PatchAutoencoder
from .patches import lowpass_sigma, lowpassed_window
from .progress import progress_bar
from .runner import PatchScorer, score_precision

BAND_DEG = 1.0  # latitude band height for geographic grids
# Grid cells (or resampled pixels, whichever is more) read and resampled at once: bounds memory.
WINDOW_CELLS = 1 << 21
# Output cells are handed on in tiles of about TILE_CELLS, TILE_COLS wide, aligned to chunks of
# CHUNK_ROWS × CHUNK_COLS (the netCDF chunk shape of the score file, scorefile.py).
CHUNK_ROWS, CHUNK_COLS = 32, 1024
TILE_CELLS, TILE_COLS = 1 << 18, 4 * CHUNK_COLS


@dataclass(frozen=True)
class Band:
    """Grid rows [row0, row1) scored with `cols_per_px` grid columns per resampled pixel."""

    row0: int
    row1: int
    cols_per_px: float


def lattice_bands(grid: xr.DataArray, px_km: float) -> list[Band]:
    """Split the grid's rows into bands that share one east-west scale."""
    geometry = GridGeometry.of(grid)
    if not geometry.geographic:
        return [Band(0, geometry.ny, px_km / geometry.cell_size_km()[1])]
    band_of_row = np.floor(grid.y.values / BAND_DEG).astype(int)
    bands = []
    for b in np.unique(band_of_row):
        rows = np.flatnonzero(band_of_row == b)
        _, km_per_col = geometry.local_km((b + 0.5) * BAND_DEG)
        bands.append(Band(int(rows[0]), int(rows[-1]) + 1, px_km / float(km_per_col)))
    return bands


def pyramid_levels(grid: xr.DataArray, meta: dict, stride_px: int) -> list[tuple[float, dict, int]]:
    """(patch width km, meta for that width, stride) for each pyramid level of the model.

    Centres are never closer than the grid's own cells: small levels would otherwise score many
    patches per cell that add nothing but time.
    """
    cell_km = min(GridGeometry.of(grid).cell_size_km())
    levels = []
    for factor in meta.get("pyramid", [1.0]):
        km = float(meta["patch_km"]) * float(factor)
        stride = max(int(stride_px), int(round(cell_km / (km / int(meta["patch_px"])))))
        levels.append((km, {**meta, "patch_km": km}, stride))
    return levels


def _interp_axis(values: torch.Tensor, positions: np.ndarray, dim: int) -> torch.Tensor:
    """Linear interpolation along one dimension at fractional indices (all within [0, n-1])."""
    i0 = np.floor(positions)
    frac = torch.from_numpy(positions - i0).to(values.device, values.dtype)
    i0 = i0.astype(np.int64)
    i1 = np.minimum(i0 + 1, values.shape[dim] - 1)  # at n-1 exactly the weight of i1 is 0
    lo = values.index_select(dim, torch.from_numpy(i0).to(values.device))
    hi = values.index_select(dim, torch.from_numpy(i1).to(values.device))
    shape = [1] * values.ndim
    shape[dim] = -1
    return lo + (hi - lo) * frac.view(shape)


def separable_bilinear(values: torch.Tensor, rows: np.ndarray, cols: np.ndarray, rows_first: bool = True,
                       dtype: torch.dtype | None = None) -> torch.Tensor:
    """Bilinear interpolation of (..., H, W) at the outer product of fractional `rows` × `cols`.

    Like patches.bilinear: a sample whose neighbours with weight ≥ 0.001 include a missing (NaN)
    value is missing. The positions must lie within the array; windows are read with margins so
    that they do. The result depends only on the values around each sample and on the positions'
    fractional parts, so the same sample from two different windows is bitwise the same.
    `dtype` is the arithmetic's precision (float64 rounds once, as scipy's map_coordinates does).
    """
    valid = torch.isfinite(values)
    axes = ((rows, values.ndim - 2), (cols, values.ndim - 1))
    if bool(valid.all()):  # nothing missing (most windows at sea): the same arithmetic, without the weights
        del valid
        out = values.to(dtype or values.dtype)
        for positions, dim in axes if rows_first else axes[::-1]:
            out = _interp_axis(out, positions, dim)
        return out.to(values.dtype)
    filled = values.to(dtype or values.dtype, copy=True).masked_fill_(~valid, 0)
    weight = valid.to(torch.float32)
    del valid
    for positions, dim in axes if rows_first else axes[::-1]:
        filled = _interp_axis(filled, positions, dim)
        weight = _interp_axis(weight, positions, dim)
    return torch.where(weight >= 0.999, filled, torch.nan).to(values.dtype)


@dataclass(frozen=True)
class BandLattice:
    """Where a band's patch centres are: every step_r grid rows and step_c grid columns."""

    band: Band
    sy: float  # grid rows per resampled pixel
    sx: float  # grid columns per resampled pixel
    stride_px: int
    patch_px: int

    @property
    def step_r(self) -> float:
        return self.stride_px * self.sy

    @property
    def step_c(self) -> float:
        return self.stride_px * self.sx


def lattice_window(grid: xr.DataArray, lat: BandLattice, m0: int, m1: int, k0: int, k1: int,
                    wrap: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grid cells (low-passed) under the patch centres [m0, m1) × [k0, k1), and the fractional
    positions of their resampled pixels' rows and columns in it."""
    S, half = lat.stride_px, lat.patch_px // 2
    # Resampled pixel q sits at grid row (q + 0.5)·sy; centre m covers q in [m·S − half, m·S + half).
    q = np.arange(m0 * S - half, (m1 - 1) * S + half)
    l = np.arange(k0 * S - half, (k1 - 1) * S + half)
    rows, cols = (q + 0.5) * lat.sy, (l + 0.5) * lat.sx
    r_lo, r_hi = math.floor(rows[0]), math.floor(rows[-1]) + 2
    c_lo, c_hi = math.floor(cols[0]), math.floor(cols[-1]) + 2
    # Low-passed as patches.sample_patches does.
    window = lowpassed_window(grid, r_lo, r_hi, c_lo, c_hi, float(lowpass_sigma(lat.sy, 1.0)),
                              float(lowpass_sigma(lat.sx, 1.0)), wrap)
    # Positions minus an integer are exact, so every window resamples a pixel identically.
    return np.ascontiguousarray(window), rows - r_lo, cols - c_lo


def resample_window(window: np.ndarray, rows: np.ndarray, cols: np.ndarray, lat: BandLattice,
               device: torch.device) -> torch.Tensor:
    """A lattice_window resampled to the lattice's pixels, on the device."""
    window = torch.from_numpy(window)
    if device.type == "cuda":  # copied from page-locked memory, without waiting for the copy
        window = window.pin_memory()
    window = window.to(device, non_blocking=True)
    with torch.inference_mode():
        return separable_bilinear(window, rows, cols, lat.sy <= lat.sx, torch.float64)


@torch.inference_mode()
def centre_stats(resampled: torch.Tensor, lat: BandLattice, scorer: PatchScorer) -> torch.Tensor:
    """(2, M, K) error and relief of the patch centres whose pixels `resampled` holds, on the device."""
    S, P = lat.stride_px, lat.patch_px
    counts = F.avg_pool2d(torch.isfinite(resampled).to(torch.float32)[None, None], P, S, divisor_override=1)[0, 0]
    out = torch.full((2, *counts.shape), torch.nan, device=scorer.device)
    views = resampled.unfold(0, P, S).unfold(1, P, S)  # (M, K, P, P), no copy
    complete = counts == P * P
    # Complete patches take the fast path; patches too holed to score (counts < min_valid) are skipped.
    for mask, is_complete in ((complete, True), (~complete & (counts >= scorer.min_valid), False)):
        mi, ki = torch.nonzero(mask, as_tuple=True)
        for i in range(0, len(mi), scorer.batch_size):
            bm, bk = mi[i : i + scorer.batch_size], ki[i : i + scorer.batch_size]
            error, relief = scorer.stats(views[bm, bk], complete=is_complete)
            out[0, bm, bk] = error
            out[1, bm, bk] = relief
    return out


def read_ahead(make, jobs):
    """make(*job) for each job, in order, each made in a second thread while the caller uses the last.

    Reading the next window (I/O, decompression, low-pass: numpy and netCDF, which release the GIL)
    then overlaps the forward passes on the current one. Not torch work: two threads of torch
    operations share its pool of cores and run slower than one. At most two results exist at once.
    """
    from concurrent.futures import ThreadPoolExecutor

    jobs = iter(jobs)
    with ThreadPoolExecutor(1, thread_name_prefix="seamountae-read") as pool:
        job = next(jobs, None)
        ahead = None if job is None else pool.submit(make, *job)
        while ahead is not None:
            result = ahead.result()
            job = next(jobs, None)
            ahead = None if job is None else pool.submit(make, *job)
            yield result
            del result


def _window_shape(lat: BandLattice, budget: int, n_m: int, n_k: int) -> tuple[int, int]:
    """Centre rows and columns per window, so that a window reads about `budget` cells or pixels."""
    S, P = lat.stride_px, lat.patch_px
    per_px_r, per_px_c = max(lat.sy, 1.0), max(lat.sx, 1.0)
    side = math.sqrt(budget)
    rows = int(np.clip((side / per_px_r - P) / S, 8, n_m))
    cols = int(np.clip((budget / ((rows * S + P) * per_px_r) / per_px_c - P) / S, 8, n_k))
    return max(rows, 1), max(cols, 1)


def _score_band(grid: xr.DataArray, lat: BandLattice, scorer: PatchScorer, wrap: bool, budget: int,
                rows: slice, cols: slice):
    """Tiles of the cells rows × cols of one band (rows already cut to the band)."""
    # Each cell interpolates the centres floor(pos) and floor(pos) + 1 on each axis.
    pos_r = np.arange(rows.start, rows.stop) / lat.step_r
    pos_c = np.arange(cols.start, cols.stop) / lat.step_c
    m_of_row = np.floor(pos_r).astype(np.int64)
    k_of_col = np.floor(pos_c).astype(np.int64)
    m_first, m_last = int(m_of_row[0]), int(m_of_row[-1]) + 1
    k_first, k_end = int(k_of_col[0]), int(k_of_col[-1]) + 2  # centres k_first .. k_of_col[-1] + 1
    rows_per_block, cols_per_window = _window_shape(lat, budget, m_last - m_first + 1, k_end - k_first)
    blocks = [(ma, min(ma + rows_per_block, m_last + 1)) for ma in range(m_first, m_last + 1, rows_per_block)]
    windows = read_ahead(lambda *job: lattice_window(grid, lat, *job, wrap),
                          ((ma, mb, ka, min(ka + cols_per_window, k_end)) for ma, mb in blocks
                           for ka in range(k_first, k_end, cols_per_window)))
    n_windows = -(-(k_end - k_first) // cols_per_window)
    # Closed here, not by the garbage collector, which would swallow an interrupt raised while it waits.
    with contextlib.closing(windows):
        buffer, buffer_m0, done = None, m_first, rows.start
        for ma, mb in blocks:
            with torch.inference_mode():  # not across a yield: that would leak the mode into the caller
                block = torch.cat([centre_stats(resample_window(*next(windows), lat, scorer.device), lat, scorer)
                                   for _ in range(n_windows)], dim=2)
                buffer = block if buffer is None else torch.cat([buffer, block], dim=1)
            if mb == m_last + 1:
                stop = rows.stop
            else:  # rows whose next centre row (m + 1) is done, cut at a chunk boundary
                stop = rows.start + int(np.searchsorted(m_of_row, mb - 1, side="left"))
                stop = max(done, stop // CHUNK_ROWS * CHUNK_ROWS)
            if stop > done:
                yield from _cell_tiles(buffer, buffer_m0, k_first, pos_r[done - rows.start : stop - rows.start], pos_c,
                                       k_of_col, slice(done, stop), cols.start)
                done = stop
                keep = int(m_of_row[stop - rows.start]) if stop < rows.stop else mb
                buffer, buffer_m0 = buffer[:, keep - buffer_m0 :], keep


def _cell_tiles(stats: torch.Tensor, m0: int, k0: int, pos_r: np.ndarray, pos_c: np.ndarray, k_of_col: np.ndarray,
                rows: slice, col0: int):
    """Interpolate centre statistics (from centre m0, k0) to the cells of `rows` and of the columns
    col0 .. col0 + len(pos_c), in tiles of about TILE_CELLS aligned to chunks."""
    nx = pos_c.size
    width = min(nx, TILE_COLS)
    height = max(CHUNK_ROWS, TILE_CELLS // width // CHUNK_ROWS * CHUNK_ROWS)
    r = rows.start
    while r < rows.stop:
        r1 = min((r // height + 1) * height, rows.stop)  # boundaries at multiples of `height`
        part = pos_r[r - rows.start : r1 - rows.start] - m0
        for c0 in range(0, nx, width):
            c1 = min(c0 + width, nx)
            ka, kb = int(k_of_col[c0]) - k0, int(k_of_col[c1 - 1]) + 2 - k0
            with torch.inference_mode():
                tile = separable_bilinear(stats[:, :, ka:kb], part, pos_c[c0:c1] - ka - k0).cpu().numpy()
            yield slice(r, r1), slice(col0 + c0, col0 + c1), {"error": tile[0], "relief_m": tile[1]}
        r = r1


def iter_score(grid: xr.DataArray, model: PatchAutoencoder, meta: dict, stride_px: int = 2, device: str = "auto",
               batch_size: int | str | None = "auto", window_cells: int | None = None,
               scorer: PatchScorer | None = None, rows: slice = slice(None), cols: slice = slice(None),
               precision: str = default("score", "precision")) -> Iterator[tuple[slice, slice, dict[str, np.ndarray]]]:
    """Score window by window: yields (rows, cols, {"error", "relief_m"}) tiles covering the grid once.

    Tiles come band by band, top to bottom, left to right; memory is bounded by `window_cells`
    (default WINDOW_CELLS), whatever the grid size. The grid may be opened lazily (grid.open_grid).
    Results do not depend on window_cells or batch_size (up to float rounding in the model).
    A ready `scorer` replaces model, device, batch_size and precision (score_precision).

    rows, cols: score only these cells (a SLURM tile, a dask block). Patches still come from the
    whole grid's lattice and read across the region's edges, so the cells get exactly the values
    a whole-grid run gives them. Tile slices are in the whole grid's indices.
    """
    patch_px = int(meta["patch_px"])
    if stride_px < 1:
        raise ValueError(f"stride_px {stride_px}: must be 1 or more")
    px_km = meta["patch_km"] / patch_px
    scorer = scorer or PatchScorer(model, device, batch_size, score_precision(meta, precision, device))
    if scorer.patch_px != patch_px:
        raise ValueError(f"model takes {scorer.patch_px}-px patches but meta says {patch_px}")
    geometry = GridGeometry.of(grid)
    wrap = geometry.wraps
    budget = int(window_cells or WINDOW_CELLS)
    dy_km, _ = geometry.cell_size_km()
    ny, nx = grid.shape
    r0, r1, _ = rows.indices(ny)
    c0, c1, _ = cols.indices(nx)
    if c0 >= c1:
        return
    for band in lattice_bands(grid, px_km):
        lat = BandLattice(band, px_km / dy_km, band.cols_per_px, int(stride_px), patch_px)
        band_rows = slice(max(r0, band.row0), min(r1, band.row1))
        if band_rows.start < band_rows.stop:
            yield from _score_band(grid, lat, scorer, wrap, budget, band_rows, slice(c0, c1))


def iter_levels(grid: xr.DataArray, scorer: PatchScorer, meta: dict, stride_px: int, window_cells: int | None = None,
                rows: slice = slice(None), cols: slice = slice(None)):
    """iter_score on every pyramid level of the model: yields (level index, rows, cols, out) tiles."""
    for k, (_, level_meta, stride) in enumerate(pyramid_levels(grid, meta, stride_px)):
        for r, c, out in iter_score(grid, scorer.model, level_meta, stride, window_cells=window_cells, scorer=scorer,
                                    rows=rows, cols=cols):
            yield k, r, c, out


def progress_cells(tiles, enabled: bool, total: int):
    """Pass (level, rows, cols, out) tiles through, advancing a progress bar by each tile's cells."""
    bar = progress_bar(None, enabled, desc="score", unit="cell", unit_scale=True, total=total) if enabled else None
    if bar is None or not hasattr(bar, "update"):
        yield from tiles
        return
    with bar:
        for k, rows, cols, out in tiles:
            yield k, rows, cols, out
            bar.update((rows.stop - rows.start) * (cols.stop - cols.start))
