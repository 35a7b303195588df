"""What the grid and the model say about each candidate seamount, and how it is combined into one score.

A candidate is a local summit of the grid that stands at least `min_height_m` above its own
surroundings and is the main top of its edifice (morphology.py). Every candidate is judged at its
own scale: a window `radius_ratio` basal radii wide (within `window_km`), so that an isolated
edifice closes inside it and a ridge crest does not. The evidence:

- from the grid: height, steepness (height / basal radius), closure and elongation;
- from the model: the autoencoder's reconstruction error of the candidate's own-scale patch, that
  error relative to its surroundings' (the same patch size around it), and the distance of its
  latent code from the training seamounts' codes (a Gaussian memory of them, as PaDiM keeps one).

A logistic combination of the evidence named in `[train] evidence`, fitted when the model is
trained (training.py) on the training grid's candidates — its catalogued seamounts (positives, each
judged by a model that did not learn it) and its summits far from any catalogued seamount
(background, mostly negatives) — turns the evidence into one score: the fraction of training-grid
candidates with such evidence that were catalogued seamounts. The threshold that maximises F1 on
those candidates is `auto`. Every candidate carries all the evidence, whichever the score combines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import xarray as xr

from .config import default
from .geometry import GridGeometry
from .grid import read_window
from .morphology import describe, find_summits, secondary

# The ground between a summit and a higher one must drop this fraction of its height, or it is
# the higher one's secondary top.
PROMINENCE = 0.25
# Background candidates of a training grid lie farther than this from every catalogued seamount.
BACKGROUND_KM = 15.0


@dataclass(frozen=True)
class CandidateRules:
    """How candidates are found and measured: recorded by `tile`, carried by the model, used by `score`."""

    patch_km: float = default("tile", "patch_km")
    window_km: tuple[float, float] = default("tile", "window_km")
    radius_ratio: float = default("tile", "radius_ratio")
    min_height_m: float = default("tile", "min_height_m")
    separation_km: float = default("tile", "separation_km")
    missing_buffer_km: float = default("tile", "missing_buffer_km")

    @classmethod
    def from_meta(cls, meta: dict) -> "CandidateRules":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["candidates"].items()})

    def as_meta(self) -> dict:
        return {"patch_km": float(self.patch_km), "window_km": [float(v) for v in self.window_km],
                "radius_ratio": float(self.radius_ratio), "min_height_m": float(self.min_height_m),
                "separation_km": float(self.separation_km), "missing_buffer_km": float(self.missing_buffer_km)}

    @property
    def reach_km(self) -> float:
        """How far from a summit finding, measuring and pruning it look (its measuring window, and a
        neighbour's, whose summit can be a window away)."""
        return 2 * max(self.window_km[1], self.patch_km) + self.separation_km


CANDIDATE_COLUMNS = ("row", "col", "x", "y", "summit_m", "height_m", "base_m", "basal_radius_km", "area_km2",
                     "window_km", "closure", "elongation")


def _halo(geometry: GridGeometry, rules: CandidateRules, r0: int, r1: int) -> tuple[int, int, np.ndarray, int]:
    """The rows [w0, w1) a search of rows [r0, r1) reads, their km per column, and the columns it
    reads on each side: `rules.reach_km` all round, at the narrowest row's scale."""
    halo = int(math.ceil(rules.reach_km / geometry.cell_size_km()[0])) + 1
    w0, w1 = max(r0 - halo, 0), min(r1 + halo, geometry.ny)
    _, dx_rows = geometry.row_km(np.arange(w0, w1))
    side = min(geometry.nx, int(math.ceil(rules.reach_km / float(dx_rows.min()))) + 1)
    return w0, w1, dx_rows, side


def find_candidates(grid: xr.DataArray, rules: CandidateRules, rows: slice = slice(None),
                    cols: slice = slice(None)) -> pd.DataFrame:
    """The candidates whose summits lie in `rows` × `cols` of the grid (all of it by default), measured.

    The grid is read only over those cells and a halo of `rules.reach_km`, so a grid opened lazily
    (grid.open_grid) can be searched tile by tile; a candidate belongs to the tile holding its
    summit, and every tile sees around it what the whole grid would show. A global grid is read
    with the same halo across the antimeridian, so an edifice on it is found once, measured whole.
    """
    ny, nx = grid.shape
    r0, r1, _ = rows.indices(ny)
    c0, c1, _ = cols.indices(nx)
    geometry = GridGeometry.of(grid)
    dy_km, _ = geometry.cell_size_km()
    w0, w1, dx_rows, side = _halo(geometry, rules, r0, r1)
    v0, v1 = (c0 - side, c1 + side) if geometry.wraps else (max(c0 - side, 0), min(c1 + side, nx))
    z = read_window(grid, w0, w1, v0, v1, geometry.wraps)
    dx_mid = float(np.median(dx_rows))
    peaks = find_summits(z, dy_km, dx_mid, rules.separation_km)
    records = []
    lo, hi = rules.window_km
    for r, c in peaks:
        found = describe(z, int(r), int(c), dy_km, float(dx_rows[r]), rules.patch_km, lo, hi, rules.radius_ratio)
        if not (found["height_m"] >= rules.min_height_m and found["basal_radius_km"] > 0) \
                or found["missing_km"] < rules.missing_buffer_km:
            continue
        records.append({"row": int(r), "col": int(c), "summit_m": float(z[r, c]), **found})
    table = pd.DataFrame(records, columns=[c for c in CANDIDATE_COLUMNS if c not in ("x", "y")] + ["missing_km"])
    if len(table):
        drop = secondary(z, table, dy_km, dx_rows[table["row"].to_numpy(int)], PROMINENCE)
        table = table[~drop]
    table = table.assign(row=table["row"] + w0, col=table["col"] + v0)
    owned = (table["row"] >= r0) & (table["row"] < r1) & (table["col"] >= c0) & (table["col"] < c1)
    table = table[owned].reset_index(drop=True)
    table["x"] = geometry.x_of(table["col"].to_numpy(int))
    table["y"] = geometry.y_of(table["row"].to_numpy(int))
    return table[list(CANDIDATE_COLUMNS)]


# ------------------------------------------------------------------------------------------- evidence

# The autoencoder's measurements of a candidate (model_evidence), as the candidates table holds them.
MODEL_COLUMNS = ("error", "error_contrast", "latent_distance")
# Evidence → how each is read off a candidate table; MODEL_EVIDENCE come from the autoencoder.
GRID_EVIDENCE = ("log_height", "log_steepness", "closure", "elongation")
MODEL_EVIDENCE = ("log_error", "error_contrast", "latent_distance")
EVIDENCE = GRID_EVIDENCE + MODEL_EVIDENCE


def evidence_table(table: pd.DataFrame) -> pd.DataFrame:
    """The evidence of each candidate (one column per name in EVIDENCE) from its measured columns."""
    height = table["height_m"].to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = pd.DataFrame({
            "log_height": np.log(height),
            "log_steepness": np.log(height / 1000.0 / table["basal_radius_km"].to_numpy(float)),
            "closure": table["closure"].to_numpy(float),
            "elongation": table["elongation"].to_numpy(float),
        })
        if "error" in table:
            out["log_error"] = np.log(table["error"].to_numpy(float))
        if "error_contrast" in table:
            out["error_contrast"] = table["error_contrast"].to_numpy(float)
        if "latent_distance" in table:
            out["latent_distance"] = table["latent_distance"].to_numpy(float)
    return out


class LatentMemory:
    """A Gaussian memory of the training seamounts' latent codes; distance = log Mahalanobis distance².

    The covariance is shrunk towards its mean variance (10 %), so a few dozen seamounts give a
    stable inverse.
    """

    SHRINK = 0.1

    def __init__(self, mean: np.ndarray, precision: np.ndarray):
        self.mean, self.precision = np.asarray(mean, np.float64), np.asarray(precision, np.float64)

    @classmethod
    def fit(cls, codes: np.ndarray) -> "LatentMemory":
        codes = np.asarray(codes, np.float64)
        cov = np.cov(codes.T).reshape(codes.shape[1], codes.shape[1])
        cov = (1 - cls.SHRINK) * cov + cls.SHRINK * (np.trace(cov) / len(cov) + 1e-12) * np.eye(len(cov))
        return cls(codes.mean(0), np.linalg.inv(cov))

    def distance(self, codes: np.ndarray) -> np.ndarray:
        d = np.asarray(codes, np.float64) - self.mean
        return np.log(np.einsum("ni,ij,nj->n", d, self.precision, d) + 1e-12)

    def as_meta(self) -> dict:
        return {"mean": self.mean.tolist(), "precision": self.precision.tolist()}

    @classmethod
    def from_meta(cls, meta: dict) -> "LatentMemory":
        return cls(np.asarray(meta["mean"]), np.asarray(meta["precision"]))


def encode(model, patches: np.ndarray, batch_size: int = 512, precision: str = "fp32") -> tuple[np.ndarray, np.ndarray]:
    """Reconstruction errors and latent codes of raw patches (n, p, p) in metres, normalised as in
    training, with the forward pass at `precision` (config.PRECISIONS)."""
    from .model import in_precision, masked_error
    from .patches import normalise_batch

    device = next(model.parameters()).device
    errors, codes = [], []
    with torch.inference_mode(), in_precision(device, precision):
        for i in range(0, len(patches), batch_size):
            raw = torch.as_tensor(np.ascontiguousarray(patches[i : i + batch_size], np.float32), device=device)
            x, valid, _ = normalise_batch(raw)
            x, valid = x[:, None], valid[:, None]
            code = model.encoder(x)
            errors.append(masked_error(model.decoder(code), x, valid).float().cpu())
            codes.append(code.float().cpu())
    if not errors:
        return np.zeros(0, np.float32), np.zeros((0, model.latent), np.float32)
    return torch.cat(errors).numpy(), torch.cat(codes).numpy()


# The terrain around a candidate, judged the same way: patches of its own width, centred this many
# widths away in each of 8 directions. Reconstruction errors depend on the terrain (rough ridge
# flanks are reconstructed worse than a smooth plateau, seamounts included), so the error that
# travels from one region to another is the candidate's relative to its surroundings'.
NEIGHBOUR_OFFSETS = (0.5, 1.0)
N_NEIGHBOURS = 8 * len(NEIGHBOUR_OFFSETS)


def candidate_patches(grid: xr.DataArray, table: pd.DataFrame, patch_px: int, patch_km: float) -> np.ndarray:
    """(n, 1 + N_NEIGHBOURS, p, p): each candidate's own-scale patch (`window_km` wide, centred on its
    summit, low-passed and resampled), then its neighbours' (NEIGHBOUR_OFFSETS)."""
    from .patches import sample_patches

    x, y = table["x"].to_numpy(float), table["y"].to_numpy(float)
    window = table["window_km"].to_numpy(float)
    geometry = GridGeometry.of(grid)
    centres = [(x, y)]
    for offset in NEIGHBOUR_OFFSETS:
        for k in range(8):
            east, north = offset * window * math.sin(k * math.pi / 4), offset * window * math.cos(k * math.pi / 4)
            centres.append(geometry.moved(x, y, east, north))
    cx, cy = (np.stack(v, axis=1).ravel() for v in zip(*centres))
    # One window per candidate, read and low-passed once for its 17 patches.
    patches = sample_patches(grid, cx, cy, patch_km, patch_px, np.repeat(window / patch_km, len(centres)), len(centres))
    return patches.reshape(len(x), len(centres), patch_px, patch_px)


def model_evidence(model, patches: np.ndarray, memory: "LatentMemory | None" = None,
                   precision: str = "fp32") -> dict[str, np.ndarray]:
    """The model's evidence from candidate_patches: its own patch's error, that error relative to the
    median of its neighbours' (log ratio), the latent code, and its distance from `memory`."""
    n, k = patches.shape[:2]
    error, codes = encode(model, patches.reshape(n * k, *patches.shape[2:]), precision=precision)
    error, codes = error.reshape(n, k), codes.reshape(n, k, model.latent)[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        contrast = np.log(error[:, 0]) - np.log(np.nanmedian(error[:, 1:], axis=1)) if n else np.zeros(0)
    out = {"error": error[:, 0], "error_contrast": contrast, "codes": codes}
    if memory is not None:
        out["latent_distance"] = memory.distance(codes)
    return out


def judge(grid: xr.DataArray, table: pd.DataFrame, model, meta: dict, precision: str = "fp32") -> pd.DataFrame:
    """The candidates with the model's evidence (error, error_contrast, latent_distance; forward
    passes at `precision`) and the combined score added."""
    table = table.copy()
    found = model_evidence(model, candidate_patches(grid, table, int(meta["patch_px"]), float(meta["patch_km"])),
                           LatentMemory.from_meta(meta["latent_memory"]), precision)
    for name in MODEL_COLUMNS:
        table[name] = found[name]
    table["score"] = Combiner.from_meta(meta["combiner"]).score(evidence_table(table))
    return table


# ------------------------------------------------------------------------------------------- combiner


class Combiner:
    """Logistic regression of "is a seamount" on standardised evidence, with an L2 penalty.

    Missing evidence (a candidate whose footprint is too small to have an elongation, say) counts
    as the training candidates' mean.
    """

    L2 = 1.0

    def __init__(self, names, mean, scale, coef, intercept):
        self.names = tuple(names)
        self.mean, self.scale = np.asarray(mean, float), np.asarray(scale, float)
        self.coef, self.intercept = np.asarray(coef, float), float(intercept)

    def _design(self, evidence: pd.DataFrame) -> np.ndarray:
        x = (evidence[list(self.names)].to_numpy(float) - self.mean) / self.scale
        return np.where(np.isfinite(x), x, 0.0)

    @classmethod
    def fit(cls, evidence: pd.DataFrame, label: np.ndarray, names=EVIDENCE) -> "Combiner":
        names = [n for n in names if n in evidence]
        raw = evidence[names].to_numpy(float)
        mean = np.array([np.nanmean(col) if np.isfinite(col).any() else 0.0 for col in raw.T])
        scale = np.array([np.nanstd(col) if np.isfinite(col).sum() > 1 else 1.0 for col in raw.T])
        scale = np.where(scale > 0, scale, 1.0)
        combiner = cls(names, mean, scale, np.zeros(len(names)), 0.0)
        x = np.column_stack([combiner._design(evidence), np.ones(len(raw))])
        y = np.asarray(label, float)
        w = np.zeros(x.shape[1])
        penalty = np.diag([cls.L2] * len(names) + [0.0])
        for _ in range(50):  # Newton's method (IRLS): the penalised log-likelihood is concave
            p = 1 / (1 + np.exp(-np.clip(x @ w, -30, 30)))
            grad = x.T @ (y - p) - penalty @ w
            hess = (x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(len(w))
            step = np.linalg.solve(hess, grad)
            w += step
            if np.abs(step).max() < 1e-8:
                break
        combiner.coef, combiner.intercept = w[:-1], float(w[-1])
        return combiner

    def score(self, evidence: pd.DataFrame) -> np.ndarray:
        return 1 / (1 + np.exp(-np.clip(self._design(evidence) @ self.coef + self.intercept, -30, 30)))

    def as_meta(self) -> dict:
        return {"names": list(self.names), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}

    @classmethod
    def from_meta(cls, meta: dict) -> "Combiner":
        return cls(meta["names"], meta["mean"], meta["scale"], meta["coef"], meta["intercept"])


def calibrate(evidence: pd.DataFrame, label: np.ndarray, n_unseen: int = 0, names=EVIDENCE) -> tuple[Combiner, dict]:
    """The combiner of `names` fitted to judged candidates (label 1 seamount, 0 background, -1 left out),
    and its best-F1 threshold (`best_f1_threshold`)."""
    label = np.asarray(label, int)
    known = label >= 0
    combiner = Combiner.fit(evidence[known], label[known], names)
    return combiner, best_f1_threshold(combiner.score(evidence[known]), label[known], n_unseen)


def best_f1_threshold(score: np.ndarray, label: np.ndarray, n_unseen: int = 0) -> dict:
    """The score threshold with the best F1 over candidates (label 1 seamount, 0 background), counting
    `n_unseen` seamounts that no candidate stands for as always missed. Ties go to the higher threshold."""
    score, label = np.asarray(score, float), np.asarray(label, int)
    n_pos = int((label == 1).sum()) + int(n_unseen)
    best = {"threshold": 0.5, "f1": 0.0, "precision": 0.0, "recall": 0.0}
    levels = np.unique(score)
    for k, t in enumerate(levels):
        kept = score >= t
        tp, fp = int((kept & (label == 1)).sum()), int((kept & (label == 0)).sum())
        f1 = 2 * tp / (2 * tp + fp + (n_pos - tp)) if n_pos + tp + fp else 0.0
        if f1 >= best["f1"]:
            # Halfway to the next lower score: the rule keeps what it kept here, with room for rounding.
            cut = 0.5 * (t + levels[k - 1]) if k else t
            best = {"threshold": float(cut), "f1": f1, "precision": tp / max(tp + fp, 1), "recall": tp / max(n_pos, 1)}
    return best


# ------------------------------------------------------------------------------------------- a grid

# Rows of the grid searched at once (plus their halo): bounds the memory of a lazily opened grid.
BLOCK_CELLS = 1 << 22
# Cells a search reads at most, halo included (128 MB of float32): wider grids are searched in
# tiles of columns too (a global 15″ grid in about 8), narrower ones in whole rows.
TILE_READ_CELLS = 1 << 25


def judge_grid(grid: xr.DataArray, model, meta: dict, rows: slice = slice(None), precision: str = "fp32") -> pd.DataFrame:
    """Every candidate of the grid's `rows` (default all), measured and judged by the model (at
    `precision`): the candidates table a score file carries (CANDIDATE_COLUMNS + error,
    latent_distance, score).

    Read tile by tile (blocks of rows, cut into columns where a block would read more than
    TILE_READ_CELLS), so a grid opened lazily is never loaded whole.
    """
    rules = CandidateRules.from_meta(meta)
    ny, nx = grid.shape
    r0, r1, _ = rows.indices(ny)
    geometry = GridGeometry.of(grid)
    halo_rows = rules.reach_km / geometry.cell_size_km()[0]
    step = max(1, BLOCK_CELLS // max(nx, 1), int(4 * halo_rows))  # blocks no thinner than their halo
    parts = []
    for a in range(r0, r1, step):
        block = slice(a, min(a + step, r1))
        w0, w1, _, side = _halo(geometry, rules, block.start, block.stop)
        n_tiles = -(-(w1 - w0) * (nx + 2 * side) // TILE_READ_CELLS)
        width = -(-nx // n_tiles)
        for c in range(0, nx, width):
            found = find_candidates(grid, rules, block, slice(c, min(c + width, nx)))
            if len(found):
                parts.append(judge(grid, found, model, meta, precision))
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=float) for name in (*CANDIDATE_COLUMNS, *JUDGED_COLUMNS)})
    # In grid order: the same table however the rows were cut into blocks or tiles.
    return pd.concat(parts, ignore_index=True).sort_values(["row", "col"], kind="stable").reset_index(drop=True)


JUDGED_COLUMNS = (*MODEL_COLUMNS, "score")
CANDIDATE_ATTRS = {
    "row": {"long_name": "summit row in the grid"},
    "col": {"long_name": "summit column in the grid"},
    "x": {"long_name": "summit x (grid coordinates)"},
    "y": {"long_name": "summit y (grid coordinates)"},
    "summit_m": {"units": "m", "long_name": "summit elevation"},
    "height_m": {"units": "m", "long_name": "summit above the median of a ring 0.4-0.5 own windows out"},
    "base_m": {"units": "m", "long_name": "elevation of the surroundings (that ring's median)"},
    "basal_radius_km": {"units": "km", "long_name": "twice the median distance at which the ground falls to half the height"},
    "area_km2": {"units": "km2", "long_name": "footprint: cells connected to the summit above base + 10 % of the height, "
                                              "within 1.5 basal radii"},
    "window_km": {"units": "km", "long_name": "own patch width"},
    "closure": {"units": "1", "long_name": "fraction of 16 sectors whose highest ground falls below base + 40 % of the height"},
    "elongation": {"units": "1", "long_name": "1 - minor/major axis of the sectors' half-height outline"},
    "error": {"units": "1", "long_name": "reconstruction error of the own patch (fraction of its variance)"},
    "error_contrast": {"units": "1", "long_name": "log of the error relative to the median error of the surroundings' patches"},
    "latent_distance": {"units": "1", "long_name": "log squared Mahalanobis distance of the latent code from the training seamounts'"},
    "score": {"units": "1", "long_name": "seamount score: combined evidence, calibrated on the training grid"},
}


def candidates_dataset(table: pd.DataFrame) -> xr.Dataset:
    """The candidates table as `candidate_*` variables along the dimension `candidate`."""
    data = {}
    for name in (*CANDIDATE_COLUMNS, *JUDGED_COLUMNS):
        values = table[name].to_numpy()
        values = values.astype(np.int64 if name in ("row", "col") else np.float64)
        data[f"candidate_{name}"] = ("candidate", values, CANDIDATE_ATTRS[name])
    return xr.Dataset(data)


def candidates_from_dataset(ds: xr.Dataset) -> pd.DataFrame:
    """The candidates table of a score dataset (empty if it has none)."""
    names = [n for n in (*CANDIDATE_COLUMNS, *JUDGED_COLUMNS) if f"candidate_{n}" in ds]
    return pd.DataFrame({n: ds[f"candidate_{n}"].values for n in names})
