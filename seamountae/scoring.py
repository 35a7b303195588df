"""Scoring: the reconstruction-error map of a whole grid, window by window.

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
copy per patch, no Python loop per patch) and scored in batches on the model's device, while a
second thread reads the next window (`_read_ahead`). Cells whose
four surrounding centres are done are interpolated and handed on (`iter_score`) for writing, so
memory depends on the window size, not on the grid size. `write_score` streams straight into a
chunked, compressed netCDF file.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr

from .config import default
from .errors import SeamountaeError
from .evidence import candidates_dataset, judge_grid
from .geometry import GridGeometry
from .grid import HDF5_LOCK, read_window
from .outputs import is_zarr
from .model import (PatchAutoencoder, calibrated_precisions, calibration_errors, in_precision, masked_error, resolve_device,
                    resolve_precision)
from .patches import MAX_NAN_FRACTION, Relief, lowpass_sigma, lowpassed_window, normaliser, resolution_problem
from .training import conformal_score

log = logging.getLogger("seamountae")

BAND_DEG = 1.0  # latitude band height for geographic grids
OUTPUTS = ("error", "relief_m")
# Grid cells (or resampled pixels, whichever is more) read and resampled at once: bounds memory.
WINDOW_CELLS = 1 << 21
# Output cells are handed on in tiles of about TILE_CELLS, TILE_COLS wide, aligned to chunks of
# CHUNK_ROWS × CHUNK_COLS (the netCDF chunk shape of `write_score`).
CHUNK_ROWS, CHUNK_COLS = 32, 1024
# Zarr stores keep every chunk in its own file: taller chunks (1 MB), so a global grid is not
# hundreds of thousands of files. Dask blocks that write into a store are aligned to them.
ZARR_CHUNK_ROWS = 256
TILE_CELLS, TILE_COLS = 1 << 18, 4 * CHUNK_COLS
# Tiles cover whole chunks, so each chunk is compressed and written once, straight through: no chunk
# cache. (With one, even a small one, HDF5's memory grew by the compressed size of all that was
# written, ~100 MB per 36 million cells, until the file was closed.)
OUTPUT_CHUNK_CACHE = 0
# Patches per forward pass on the CPU: larger batches spill the caches and run slower (measured
# on 2 cores, 32-px patches: 128 about 5–10 % faster than 256, 2x faster than 1024).
CPU_BATCH = 128
MAX_CUDA_BATCH = 1 << 15
MIN_BATCH = 16  # smaller batches take other kernels, with other rounding

LEVEL_ATTRS = {"units": "km", "long_name": "patch width of this pyramid level"}
VARIABLES = {
    "elevation": {"units": "m", "long_name": "elevation (positive up)", "positive": "up"},
    "error": {"units": "1", "long_name": "reconstruction error (fraction of patch variance)"},
    "score": {"units": "1", "long_name": "seamount-likeness: conformal p-value against held-out seamounts"},
    "relief_m": {"units": "m", "long_name": "patch centre relief above the patch's outer ring"},
}
DIMS = {name: ("y", "x") if name == "elevation" else ("level", "y", "x") for name in VARIABLES}


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


def auto_batch_size(device: torch.device, patch_px: int = 32, width: int = 16) -> int:
    """Patches per forward pass: as many as fit comfortably in free memory, capped where speed stops growing.

    On CUDA up to a quarter of the free device memory (at most 32768 patches); on the CPU at most
    CPU_BATCH (cache-sized batches are fastest) and at most a tenth of the free RAM.
    """
    # Live float32 activations per patch in a forward pass, with normalisation temporaries.
    per_patch = 4 * (16 * patch_px**2 + 6 * width * (patch_px // 2) ** 2)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(max(256, min(MAX_CUDA_BATCH, free // 4 // per_patch)))
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        free = 1 << 30
    return int(max(32, min(CPU_BATCH, free // 10 // per_patch)))


class PatchScorer:
    """The model on a device, turning batches of raw patches (metres) into per-patch statistics.

    batch_size "auto" (or None) picks it from free memory (`auto_batch_size`). The forward pass runs
    at `precision` (config.PRECISIONS, or auto: model.resolve_precision) under autocast; training
    calibrates the map with this same runner at each precision (training.map_errors), so errors
    computed at one precision are compared with calibration errors computed at the same one.
    `patches_scored` counts the patches that went through the model.
    """

    def __init__(self, model: PatchAutoencoder, device: str = "auto", batch_size: int | str | None = "auto",
                 precision: str = default("score", "precision")):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.network = model.for_inference()  # the same function, 10–30 % faster on CPUs
        p = int(model.patch_px)
        self.patch_px = p
        if batch_size in (None, "auto"):
            batch_size = auto_batch_size(self.device, p, int(getattr(model, "width", 16)))
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size {batch_size}: must be 1 or more")
        self.precision = resolve_precision(precision, self.device)
        # Batches are padded to a multiple of this: one shape on the CPU, a few dozen at most on CUDA.
        self._granule = self.batch_size if self.device.type == "cpu" else min(self.batch_size, 1024)
        self._normalise = normaliser(p, str(self.device))
        self._relief = Relief(p, self.device)
        self.min_valid = (1 - MAX_NAN_FRACTION) * p * p
        self.patches_scored = 0

    def stats(self, patches: torch.Tensor, complete: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(error, relief_m) of one batch (n, p, p) of raw patches on the device; NaN if unusable.

        complete: the caller knows every cell of every patch is valid (None: check).
        """
        n = patches.shape[0]
        size = max(MIN_BATCH, -(-n // self._granule) * self._granule)
        if 0 < n < size:
            # Every batch size is another set of oneDNN kernels (~5 MB each, cached for good) and tiny
            # ones round differently: pad the last batch of a window to one of a few sizes.
            pad = patches[:1].expand(size - n, *patches.shape[1:])
            error, relief = self.stats(torch.cat([patches, pad]), complete)
            self.patches_scored -= size - n
            return error[:n], relief[:n]
        flat = patches.reshape(n, -1)
        if complete is None:
            complete = bool(torch.isfinite(flat).all())
        if complete:  # the common case, in fewer passes over memory
            x = self._normalise.complete(flat)
            error = (self._forward(x) - x).square_().mean(1)
            self.patches_scored += n
            return error, self._relief(flat, complete=True)
        x, w, _ = self._normalise(flat)
        error = masked_error(self._forward(x), x, w)
        usable = w.sum(1) >= self.min_valid
        self.patches_scored += n
        return torch.where(usable, error, torch.nan), torch.where(usable, self._relief(flat), torch.nan)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        with in_precision(self.device, self.precision):
            recon = self.network(x.view(n, 1, self.patch_px, self.patch_px))
        return recon.float().reshape(n, -1)

    def __call__(self, patches: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {name: [] for name in OUTPUTS}
        with torch.inference_mode():
            for i in range(0, len(patches), self.batch_size):
                raw = patches[i : i + self.batch_size].to(self.device, non_blocking=True)
                error, relief = self.stats(raw)
                out["error"].append(error.float().cpu())
                out["relief_m"].append(relief.float().cpu())
        return {k: torch.cat(v) if v else torch.zeros(0) for k, v in out.items()}


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
class _BandLattice:
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


def _lattice_window(grid: xr.DataArray, lat: _BandLattice, m0: int, m1: int, k0: int, k1: int,
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


def _resampled(window: np.ndarray, rows: np.ndarray, cols: np.ndarray, lat: _BandLattice,
               device: torch.device) -> torch.Tensor:
    """A _lattice_window resampled to the lattice's pixels, on the device."""
    window = torch.from_numpy(window)
    if device.type == "cuda":  # copied from page-locked memory, without waiting for the copy
        window = window.pin_memory()
    window = window.to(device, non_blocking=True)
    with torch.inference_mode():
        return separable_bilinear(window, rows, cols, lat.sy <= lat.sx, torch.float64)


@torch.inference_mode()
def _centre_stats(resampled: torch.Tensor, lat: _BandLattice, scorer: PatchScorer) -> torch.Tensor:
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


def _read_ahead(make, jobs):
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


def _window_shape(lat: _BandLattice, budget: int, n_m: int, n_k: int) -> tuple[int, int]:
    """Centre rows and columns per window, so that a window reads about `budget` cells or pixels."""
    S, P = lat.stride_px, lat.patch_px
    per_px_r, per_px_c = max(lat.sy, 1.0), max(lat.sx, 1.0)
    side = math.sqrt(budget)
    rows = int(np.clip((side / per_px_r - P) / S, 8, n_m))
    cols = int(np.clip((budget / ((rows * S + P) * per_px_r) / per_px_c - P) / S, 8, n_k))
    return max(rows, 1), max(cols, 1)


def _score_band(grid: xr.DataArray, lat: _BandLattice, scorer: PatchScorer, wrap: bool, budget: int,
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
    windows = _read_ahead(lambda *job: _lattice_window(grid, lat, *job, wrap),
                          ((ma, mb, ka, min(ka + cols_per_window, k_end)) for ma, mb in blocks
                           for ka in range(k_first, k_end, cols_per_window)))
    n_windows = -(-(k_end - k_first) // cols_per_window)
    # Closed here, not by the garbage collector, which would swallow an interrupt raised while it waits.
    with contextlib.closing(windows):
        buffer, buffer_m0, done = None, m_first, rows.start
        for ma, mb in blocks:
            with torch.inference_mode():  # not across a yield: that would leak the mode into the caller
                block = torch.cat([_centre_stats(_resampled(*next(windows), lat, scorer.device), lat, scorer)
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
        lat = _BandLattice(band, px_km / dy_km, band.cols_per_px, int(stride_px), patch_px)
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
    from .training import progress_bar

    bar = progress_bar(None, enabled, desc="score", unit="cell", unit_scale=True, total=total) if enabled else None
    if bar is None or not hasattr(bar, "update"):
        yield from tiles
        return
    with bar:
        for k, rows, cols, out in tiles:
            yield k, rows, cols, out
            bar.update((rows.stop - rows.start) * (cols.stop - cols.start))


def cell_outputs(elevation: np.ndarray, maps: dict[str, np.ndarray], calibration_errors) -> dict[str, np.ndarray]:
    """The score dataset's variables on some cells: missing elevation → missing everywhere."""
    elevation = np.asarray(elevation, np.float32)
    missing = ~np.isfinite(elevation)
    error = np.where(missing, np.nan, maps["error"]).astype(np.float32)
    return {
        "elevation": elevation,
        "error": error,
        "score": conformal_score(error, calibration_errors),
        "relief_m": np.where(missing, np.nan, maps["relief_m"]).astype(np.float32),
    }


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


def score_precision(meta: dict, requested: str, device: str | torch.device = "auto", model_label: str = "the model",
                    resolved: str | None = None) -> str:
    """The precision a score runs at: `requested` (auto: model.resolve_precision for the device, or
    `resolved` where another process, a dask worker, resolved it) if the model is calibrated at it.
    auto falls back to fp32 for a model without that calibration; a precision asked for by name
    that the model lacks is a SeamountaeError."""
    precision = resolved or resolve_precision(requested, resolve_device(str(device)))
    available = calibrated_precisions(meta)
    if precision in available:
        return precision
    if requested == "auto":
        log.info("%s has no %s calibration: scoring in fp32", model_label, precision)
        return "fp32"
    raise SeamountaeError(f"{model_label} has no {precision} calibration (calibrated at {', '.join(available)}); score "
                          f"with --precision {available[0]}, or train the model again with this seamountae")


def score(grid: xr.DataArray, model: PatchAutoencoder, meta: dict, stride_px: int = default("score", "stride_px"),
          device: str = "auto", batch_size: int | str | None = "auto", progress: bool = False,
          window_cells: int | None = None, precision: str = default("score", "precision")) -> xr.Dataset:
    """The score dataset of a whole grid, in memory: elevation, and error, score and relief on every
    pyramid level (dims level, y, x)."""
    warn_if_coarse(grid, meta)
    precision = score_precision(meta, precision, device)
    levels = pyramid_levels(grid, meta, stride_px)
    maps = {name: np.full((len(levels), *grid.shape), np.nan, np.float32) for name in OUTPUTS}
    scorer = PatchScorer(model, device, batch_size, precision)
    for k, rows, cols, out in progress_cells(iter_levels(grid, scorer, meta, stride_px, window_cells), progress,
                                             len(levels) * grid.size):
        for name in OUTPUTS:
            maps[name][k, rows, cols] = out[name]
    judged = judge_grid(grid, scorer.model, meta, precision=precision)
    return score_dataset(grid, maps, meta, stride_px, precision).merge(candidates_dataset(judged))


def warn_if_coarse(grid: xr.DataArray, meta: dict) -> None:
    problem = resolution_problem(grid, meta)
    if problem:
        log.warning(problem)


def _dataset_attrs(grid: xr.DataArray, meta: dict, stride_px: int, precision: str) -> dict:
    return {
        "seamountae_kind": "score",
        "patch_km": float(meta["patch_km"]),
        "patch_px": int(meta["patch_px"]),
        "pyramid": np.asarray(meta.get("pyramid", [1.0]), float),
        "stride_px": int(stride_px),
        "precision": precision,
        "candidate_rules": json.dumps(meta["candidates"]),
        "threshold_auto": float(meta["threshold"]["value"]),
        "geographic": int(grid.attrs.get("geographic", 0)),
        "crs": grid.attrs.get("crs", ""),
    }


def score_dataset(grid: xr.DataArray, maps: dict[str, np.ndarray], meta: dict, stride_px: int,
                  precision: str = "fp32") -> xr.Dataset:
    """Per-level maps (level, y, x), computed at `precision` → the score dataset."""
    values = cell_outputs(grid.values, maps, calibration_errors(meta, precision))
    return _score_layout(grid, meta, stride_px, values, precision)


def _score_layout(grid: xr.DataArray, meta: dict, stride_px: int, values: dict, precision: str) -> xr.Dataset:
    """The score dataset around `values` (name → array on DIMS): coordinates, levels, attributes."""
    levels = np.asarray([km for km, _, _ in pyramid_levels(grid, meta, stride_px)], float)
    return xr.Dataset({name: (DIMS[name], values[name], dict(attrs)) for name, attrs in VARIABLES.items()},
                      coords={"y": grid.y, "x": grid.x, "level_km": ("level", levels, LEVEL_ATTRS)},
                      attrs=_dataset_attrs(grid, meta, stride_px, precision))


def return_freed_memory() -> None:
    """Have glibc hand freed window-sized blocks (6 MiB or more) straight back to the system.

    Scoring allocates and frees window-sized arrays over and over. glibc's adaptive mmap threshold
    would, after the first window, serve such blocks from its heap, where fragmentation keeps them
    resident, and memory would creep up by a window's worth or more. Smaller blocks (a batch's
    activations) stay in the heap and are reused without page faults. Call it once, at the start of
    a process that scores (`seamountae score` does). A no-op where glibc is not the C library.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, 6 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _as_os_error(exc: RuntimeError) -> Exception:
    """netCDF4 reports HDF5 failures (a full disk among them) as RuntimeError: make them OSErrors."""
    if "NetCDF" not in str(exc) and "HDF" not in str(exc):
        return exc
    return OSError(str(exc))


class _Writer:
    """Runs write(*item) for each item put, in order, in a background thread (at most `depth` waiting).

    Leaving the block normally waits for the thread to finish and raises its error, if any (an
    error also shows at the next put). Leaving it by an exception (an interrupt) does not wait:
    the thread drops what is left and stops after the item it is on.
    """

    def __init__(self, write, depth: int = 4):
        import queue
        import threading

        self._write, self._queue, self._error, self._abort = write, queue.Queue(depth), None, False
        self._thread = threading.Thread(target=self._run, name="seamountae-writer", daemon=True)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None and not self._abort:
            if self._error is None:
                try:
                    self._write(*item)
                except BaseException as exc:  # handed to the main thread
                    self._error = exc

    def put(self, *item) -> None:
        self._raise()
        self._queue.put(item)

    def _raise(self) -> None:
        if self._error is not None:
            error = self._error
            raise (_as_os_error(error) if isinstance(error, RuntimeError) else error)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, kind, value, traceback):
        if kind is not None:
            self._abort = True
            try:
                self._queue.put_nowait(None)  # wakes the thread if it waits for work
            except Exception:  # full: the thread stops at its next item
                pass
            return False
        self._queue.put(None)
        self._thread.join()
        self._raise()
        return False


def write_score(grid: xr.DataArray, model: PatchAutoencoder, meta: dict, path, attrs: dict | None = None,
                stride_px: int = default("score", "stride_px"), device: str = "auto", batch_size: int | str | None = "auto",
                progress: bool = False, window_cells: int | None = None, rows: slice = slice(None),
                precision: str = default("score", "precision")) -> dict[str, int]:
    """Score a grid window by window straight into a new CF netCDF-4 file at `path`.

    The file is what `outputs.write_netcdf(grid.georeferenced(score(...), grid), ...)` writes (same
    variables, coordinates and attributes; `attrs` are added as global attributes), but it is
    written tile by tile into chunked, compressed variables, so memory stays bounded whatever the
    grid size; the judged candidates of the same rows follow. `rows` writes only those rows (a SLURM
    array task's part, see tiling.py). `path` is written in place: callers wrap it in
    outputs.atomic_output. Every forward pass runs at `precision` (score_precision). Returns
    counts: cells, valid (cells with an elevation), scored (cells with an error), patches (model
    inputs) and candidates.
    """
    warn_if_coarse(grid, meta)
    precision = score_precision(meta, precision, device)
    scorer = PatchScorer(model, device, batch_size, precision)
    tiles = iter_levels(grid, scorer, meta, stride_px, window_cells, rows)
    counts = write_tiles(grid, meta, stride_px, path, tiles, attrs, rows, progress, precision)
    counts["patches"] = scorer.patches_scored
    counts["candidates"] = append_candidates(path, judge_grid(grid, scorer.model, meta, rows, precision))
    return counts


def append_candidates(path, table) -> int:
    """Add the judged candidates (evidence.judge_grid) to a finished score file or store; returns their count."""
    ds = candidates_dataset(table)
    if is_zarr(path):
        with xr.open_zarr(str(path)) as store:
            ds.attrs = dict(store.attrs)  # appending rewrites the store's attributes: keep them
        ds.to_zarr(str(path), mode="a", zarr_format=2, consolidated=True)
    else:
        with HDF5_LOCK:
            ds.to_netcdf(path, mode="a", engine="netcdf4")
    return len(table)


def create_score_file(path, grid: xr.DataArray, meta: dict, stride_px: int, attrs: dict | None = None,
                      rows: slice = slice(None), precision: str = "fp32"):
    """A new score file for `rows` of the grid, its variables created empty; returns the open netCDF4.Dataset
    (or, for a path ending in .zarr, a Zarr store that is filled the same way).

    The layout comes from the in-memory writer's own functions, on data that takes no memory:
    xarray writes coordinates, CRS and attributes as outputs.write_netcdf does; netCDF4 then adds
    the grids as chunked, compressed variables for the caller to fill tile by tile.
    """
    import netCDF4

    from .grid import georeferenced

    grid = grid.isel(y=rows)
    n_levels = len(pyramid_levels(grid, meta, stride_px))
    empty = {name: np.broadcast_to(np.float32(np.nan), grid.shape if name == "elevation" else (n_levels, *grid.shape))
             for name in VARIABLES}
    cf = georeferenced(_score_layout(grid, meta, stride_px, empty, precision), grid)
    cf.attrs.update(attrs or {})
    ydim, xdim = cf["elevation"].dims
    ny, nx = grid.shape
    chunks = (min(ny, CHUNK_ROWS), min(nx, CHUNK_COLS))
    if is_zarr(path):
        return _create_zarr_store(path, cf, (min(ny, ZARR_CHUNK_ROWS), chunks[1]))
    variable_attrs = {name: dict(cf[name].attrs) for name in VARIABLES}
    cf.drop_vars(list(VARIABLES)).to_netcdf(path, format="NETCDF4", engine="netcdf4")
    default_cache = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(OUTPUT_CHUNK_CACHE, 1009, 1.0)  # for the variables created below
    try:
        nc = netCDF4.Dataset(path, "a")
    except RuntimeError as exc:
        raise _as_os_error(exc) from exc
    finally:
        netCDF4.set_chunk_cache(*default_cache)
    try:
        for name, a in variable_attrs.items():
            on_levels = name != "elevation"
            # zlib level 1: as small as level 4 here (±3 %), and 20 % faster to write.
            v = nc.createVariable(name, "f4", (("level",) if on_levels else ()) + (ydim, xdim), zlib=True,
                                  complevel=1, shuffle=True, chunksizes=((1,) if on_levels else ()) + chunks,
                                  fill_value=np.float32(np.nan))
            v.set_var_chunk_cache(size=OUTPUT_CHUNK_CACHE, nelems=1009, preemption=1.0)
            v.setncatts(a)
    except BaseException as exc:
        nc.close()
        raise _as_os_error(exc) if isinstance(exc, RuntimeError) else exc
    return nc


class ZarrStore:
    """A Zarr score store open for filling: variables by name, as a netCDF4.Dataset gives them."""

    def __init__(self, path):
        import zarr

        self._group = zarr.open_group(str(path), mode="r+")

    def __getitem__(self, name):
        return self._group[name]

    def close(self) -> None:
        pass  # every write went straight to the store's chunk files


def _create_zarr_store(path, cf: xr.Dataset, chunks: tuple[int, int]) -> ZarrStore:
    """The score file's layout as a Zarr store (a *.zarr output): xarray writes coordinates,
    attributes and empty variables, chunked like the netCDF file; tiles then go straight in."""
    import dask.array as da

    empty = cf.copy()
    encoding = {}
    for name in VARIABLES:
        var = cf[name]
        var_chunks = ((1,) if var.ndim == 3 else ()) + chunks
        empty[name] = var.copy(data=da.full(var.shape, np.nan, dtype=np.float32, chunks=var_chunks))
        encoding[name] = {"chunks": var_chunks}
    # Zarr format 2 with consolidated metadata: what GDAL, QGIS and older zarr readers open.
    empty.to_zarr(str(path), mode="w", compute=False, encoding=encoding, zarr_format=2, consolidated=True)
    return ZarrStore(path)


def write_cells(store, grid: xr.DataArray, calibration, k: int, rows: slice, cols: slice, out: dict,
                row0: int = 0) -> tuple[int, int]:
    """Finish one tile and write it into an open score store (whose first row is grid row `row0`):
    its elevation (read back from the grid) on level 0, error, relief and conformal score on level k.
    Returns the counts of cells with an elevation (level 0 only) and with an error."""
    elevation = read_window(grid, rows.start, rows.stop, cols.start, cols.stop)
    values = cell_outputs(elevation, out, calibration)
    local = slice(rows.start - row0, rows.stop - row0)
    with HDF5_LOCK:
        if k == 0:
            store["elevation"][local, cols] = elevation
        for name in OUTPUTS + ("score",):
            store[name][k, local, cols] = values[name]
    return (int(np.isfinite(elevation).sum()) if k == 0 else 0), int(np.isfinite(values["error"]).sum())


def write_tiles(grid: xr.DataArray, meta: dict, stride_px: int, path, tiles, attrs: dict | None = None,
                rows: slice = slice(None), progress: bool = False, precision: str = "fp32") -> dict[str, int]:
    """Write (level, rows, cols, {"error", "relief_m"}) tiles, computed at `precision`, in any order,
    into a new score file.

    Each tile is finished (`write_cells`) and written in a second thread while the caller produces
    the next one (the model, or a dask cluster): writing is a quarter of the work on one CPU core.
    Returns cells, valid and scored counts.
    """
    r0, r1, _ = rows.indices(grid.sizes["y"])
    calibration = calibration_errors(meta, precision)
    nc = create_score_file(path, grid, meta, stride_px, attrs, slice(r0, r1), precision)
    n_levels = len(pyramid_levels(grid, meta, stride_px))
    counts = {"cells": (r1 - r0) * grid.sizes["x"], "valid": 0, "scored": 0}
    try:
        def write(k: int, tile_rows: slice, tile_cols: slice, out: dict) -> None:
            valid, scored = write_cells(nc, grid, calibration, k, tile_rows, tile_cols, out, r0)
            counts["valid"] += valid
            counts["scored"] += scored

        with _Writer(write) as writer:
            for item in progress_cells(tiles, progress, n_levels * counts["cells"]):
                writer.put(*item)
    finally:
        with HDF5_LOCK:  # after an interrupt the writer may still be busy with a tile
            nc.close()
    return counts


def is_geotiff(path) -> bool:
    """Score outputs named *.tif / *.tiff are GeoTIFFs for viewing: score and error bands."""
    return str(path).lower().endswith((".tif", ".tiff"))


def geotiff_from_score(score_path, path, attrs: dict | None = None, block_rows: int = 512) -> None:
    """Write the maps of a score file as a tiled, compressed Cloud-Optimized GeoTIFF at `path`.

    Bands: the score and the error of each pyramid level (described as such), float32, NaN as
    nodata, north-up, with the grid's CRS; `attrs` become dataset tags. Written block by block
    (memory follows the block, not the grid), through a tiled GeoTIFF that GDAL's COG driver
    then lays out with overviews. The candidates table stays in the netCDF score file.
    """
    import rasterio
    from rasterio.crs import CRS
    from rasterio.shutil import copy as raster_copy
    from .grid import from_cf_dataset

    with xr.open_dataset(score_path, engine="netcdf4") as raw:
        ds = from_cf_dataset(raw)
        geometry = GridGeometry.of(ds)
        levels = np.atleast_1d(ds["level_km"].values)
        bands = [(name, k) for k in range(levels.size) for name in ("score", "error")]
        crs = ds.attrs.get("crs") or None
        profile = {"driver": "GTiff", "width": geometry.nx, "height": geometry.ny, "count": len(bands), "dtype": "float32",
                   "crs": CRS.from_wkt(crs) if crs else None, "nodata": np.nan,
                   "transform": geometry.north_up_transform(),
                   "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate", "predictor": 3,
                   "BIGTIFF": "IF_SAFER"}
        staging = Path(str(path) + ".tiled.tif")
        try:
            with rasterio.open(staging, "w", **profile) as dst:
                for i, (name, k) in enumerate(bands, start=1):
                    suffix = f" at {levels[k]:g} km" if levels.size > 1 else ""
                    dst.set_band_description(i, f"{name}{suffix}: {VARIABLES[name]['long_name']}")
                ny = geometry.ny
                for r0 in range(0, ny, block_rows):
                    r1 = min(r0 + block_rows, ny)
                    window = rasterio.windows.Window(0, ny - r1, geometry.nx, r1 - r0)  # north-up: the last rows first
                    for i, (name, k) in enumerate(bands, start=1):
                        block = ds[name].isel(level=k, y=slice(r0, r1)).values.astype(np.float32)
                        dst.write(np.flipud(block), i, window=window)
                dst.update_tags(**{str(k): str(v) for k, v in (attrs or {}).items()})
            raster_copy(staging, path, driver="COG", compress="DEFLATE", predictor="FLOATING_POINT", BIGTIFF="IF_SAFER")
        finally:
            staging.unlink(missing_ok=True)
