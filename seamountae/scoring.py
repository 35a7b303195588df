"""Scoring: a grid and a model → a score file (the `score` stage).

The map comes from the scoring lattice (lattice.py), its forward passes from the model runner
(runner.py), every candidate summit's judgement from evidence.py, and the file's layout and
writers from scorefile.py. `score` builds the dataset in memory; `write_score` streams a grid of
any size straight into a chunked, compressed netCDF file (or Zarr store) in bounded memory.

Layer 5, stages: imports layers 1-5 only.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import xarray as xr

from .candidates import CandidateRules
from .config import default
from .evidence import NEIGHBOUR_OFFSETS, candidates_dataset, judge_grid
from .lattice import iter_levels, progress_cells, pyramid_levels
from .model import PatchAutoencoder
from .patches import resolution_problem
from .runner import OUTPUTS, PatchScorer, score_precision
from .scorefile import append_candidates, score_dataset, write_tiles

log = logging.getLogger("seamountae")


def score(grid: xr.DataArray, model: PatchAutoencoder, meta: dict, stride_px: int = default("score", "stride_px"),
          device: str = "auto", batch_size: int | str | None = "auto", progress: bool = False,
          window_cells: int | None = None, precision: str = default("score", "precision"),
          contrast: bool | None = None) -> xr.Dataset:
    """The score dataset of a whole grid, in memory: elevation, and error, score and relief on every
    pyramid level (dims level, y, x), and the judged candidates (`contrast` as evidence.judge's)."""
    warn_if_coarse(grid, meta)
    precision = score_precision(meta, precision, device)
    levels = pyramid_levels(grid, meta, stride_px)
    maps = {name: np.full((len(levels), *grid.shape), np.nan, np.float32) for name in OUTPUTS}
    scorer = PatchScorer(model, device, batch_size, precision)
    for k, rows, cols, out in progress_cells(iter_levels(grid, scorer, meta, stride_px, window_cells), progress,
                                             len(levels) * grid.size):
        for name in OUTPUTS:
            maps[name][k, rows, cols] = out[name]
    judged = judge_grid(grid, scorer.model, meta, precision=precision, contrast=contrast)
    return score_dataset(grid, maps, meta, stride_px, precision).merge(candidates_dataset(judged))


def reach_km(meta: dict) -> float:
    """How far from a cell its score reads (km): the map's largest patch (its half diagonal) and the
    candidates' search, measurement and neighbour patches, with their low-pass margin (5 %)."""
    rules = CandidateRules.from_meta(meta)
    widest = max(float(meta["patch_km"]) * max(meta.get("pyramid", [1.0])), rules.window_km[1])
    neighbours = max(NEIGHBOUR_OFFSETS) * rules.window_km[1] + math.sqrt(0.5) * widest
    return 1.05 * max(rules.reach_km, neighbours)


def warn_if_coarse(grid: xr.DataArray, meta: dict) -> None:
    problem = resolution_problem(grid, meta)
    if problem:
        log.warning(problem)


def write_score(grid: xr.DataArray, model: PatchAutoencoder, meta: dict, path, attrs: dict | None = None,
                stride_px: int = default("score", "stride_px"), device: str = "auto", batch_size: int | str | None = "auto",
                progress: bool = False, window_cells: int | None = None, rows: slice = slice(None),
                cols: slice = slice(None), precision: str = default("score", "precision"),
                origin: tuple[int, int] | None = None) -> dict[str, int]:
    """Score a grid window by window straight into a new CF netCDF-4 file at `path`.

    The file is what `outputs.write_netcdf(grid.georeferenced(score(...), grid), ...)` writes (same
    variables, coordinates and attributes; `attrs` are added as global attributes), but it is
    written tile by tile into chunked, compressed variables, so memory stays bounded whatever the
    grid size; the judged candidates of the same cells follow. `rows` alone writes only those rows
    (a SLURM array task's part, see parts.py; its candidates indexed in the whole grid); `rows` and
    `cols` together write a score file of just those cells (a --region cut with its halo,
    grid.cut_region; its candidates indexed in the file), scored as the whole grid scores them.
    origin: the cell the candidates' rows and columns count from, where it is neither (a strip of a
    region: the region's first cell, as in the file its parts merge into). `path` is written in
    place: callers wrap it in outputs.atomic_output. Every forward pass runs at `precision` (score_precision). Returns
    counts: cells, valid (cells with an elevation), scored (cells with an error), patches (model
    inputs) and candidates.
    """
    warn_if_coarse(grid, meta)
    precision = score_precision(meta, precision, device)
    scorer = PatchScorer(model, device, batch_size, precision)
    tiles = iter_levels(grid, scorer, meta, stride_px, window_cells, rows, cols)
    counts = write_tiles(grid, meta, stride_px, path, tiles, attrs, rows, progress, precision, cols)
    counts["patches"] = scorer.patches_scored
    counts["candidates"] = append_candidates(path, judged_cells(grid, scorer.model, meta, rows, cols, precision, origin))
    return counts


def judged_cells(grid: xr.DataArray, model: PatchAutoencoder, meta: dict, rows: slice, cols: slice, precision: str,
                 origin: tuple[int, int] | None = None):
    """The judged candidates of `rows` × `cols` (evidence.judge_grid), indexed as write_score's file
    of those cells indexes them: from `origin`, or from the first cell where `cols` is not all."""
    judged = judge_grid(grid, model, meta, rows, precision, cols)
    if origin is None and cols != slice(None):  # a region's file: its own indices
        origin = rows.indices(grid.shape[0])[0], cols.indices(grid.shape[1])[0]
    if origin is not None:
        judged = judged.assign(row=judged["row"] - origin[0], col=judged["col"] - origin[1])
    return judged
