"""What the grid and the model say about each candidate seamount, and its one combined score.

Every candidate (candidates.py) is judged at its own scale. The evidence:

- from the grid: height, steepness (height / basal radius), closure and elongation;
- from the model: the autoencoder's reconstruction error of the candidate's own-scale patch, that
  error relative to its surroundings' (the same patch size around it), and the distance of its
  latent code from the training seamounts' codes (a Gaussian memory of them, as PaDiM keeps one).

The combiner fitted when the model is trained (calibration.py) turns the evidence named in
`[train] evidence` into one score; every candidate carries all the evidence, whichever the score
combines (but the error contrast, 16 more patches a candidate, is measured only where the score
combines it or the caller asks: NaN otherwise), and its shape (shapes.py): the nearest of the
model's shape classes, the distance from it, and its standardised latent code (`shape_code_1..N`,
what `similar` compares). `judge_grid` is the candidate pass of `score`; `candidates_dataset` is the
candidates table as a score file holds it.

Layer 4, judgement: imports layers 1-4 only.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import xarray as xr

from .calibration import Combiner, stored
from .candidates import CANDIDATE_COLUMNS, CandidateRules, search_tiles
from .geometry import GridGeometry
from .model import in_precision, masked_error
from .patches import normalise_batch, sample_patches
from .shapes import NO_CLASS, ShapeClasses, code_columns

# ------------------------------------------------------------------------------------------- evidence

# The autoencoder's measurements of a candidate (model_evidence), as the candidates table holds them.
MODEL_COLUMNS = ("error", "error_contrast", "latent_distance")


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
        return cls(stored(codes.mean(0)), stored(np.linalg.inv(cov)))  # LAPACK's last bits vary by machine

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


def candidate_patches(grid: xr.DataArray, table: pd.DataFrame, patch_px: int, patch_km: float,
                      device: torch.device | str = "cpu", neighbours: bool = True) -> np.ndarray:
    """(n, 1 + N_NEIGHBOURS, p, p): each candidate's own-scale patch (`window_km` wide, centred on its
    summit, low-passed and resampled on `device`), then its neighbours' (NEIGHBOUR_OFFSETS); (n, 1, p, p)
    without the neighbours."""
    x, y = table["x"].to_numpy(float), table["y"].to_numpy(float)
    window = table["window_km"].to_numpy(float)
    geometry = GridGeometry.of(grid)
    centres = [(x, y)]
    for offset in NEIGHBOUR_OFFSETS if neighbours else ():
        for k in range(8):
            east, north = offset * window * math.sin(k * math.pi / 4), offset * window * math.cos(k * math.pi / 4)
            centres.append(geometry.moved(x, y, east, north))
    cx, cy = (np.stack(v, axis=1).ravel() for v in zip(*centres))
    # One window read per candidate, its 17 patches computed as one batch.
    patches = sample_patches(grid, cx, cy, patch_km, patch_px, np.repeat(window / patch_km, len(centres)), len(centres),
                             device)
    return patches.reshape(len(x), len(centres), patch_px, patch_px)


def model_evidence(model, patches: np.ndarray, memory: "LatentMemory | None" = None,
                   precision: str = "fp32") -> dict[str, np.ndarray]:
    """The model's evidence from candidate_patches: its own patch's error, that error relative to the
    median of its neighbours' (log ratio; NaN without them), the latent code, and its distance from `memory`."""
    n, k = patches.shape[:2]
    error, codes = encode(model, patches.reshape(n * k, *patches.shape[2:]), precision=precision)
    error, codes = error.reshape(n, k), codes.reshape(n, k, model.latent)[:, 0]
    contrast = np.full(n, np.nan, np.float32)
    if n and k > 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            contrast = np.log(error[:, 0]) - np.log(np.nanmedian(error[:, 1:], axis=1))
    out = {"error": error[:, 0], "error_contrast": contrast, "codes": codes}
    if memory is not None:
        out["latent_distance"] = memory.distance(codes)
    return out


def judge(grid: xr.DataArray, table: pd.DataFrame, model, meta: dict, precision: str = "fp32",
          contrast: bool | None = None) -> pd.DataFrame:
    """The candidates with the model's evidence (error, error_contrast, latent_distance; forward
    passes at `precision`) and the combined score added.

    contrast: measure error_contrast (the neighbours' 16 patches, most of the pass's time); by
    default only where the model's score combines it, NaN otherwise."""
    table = table.copy()
    combiner = Combiner.from_meta(meta["combiner"])
    neighbours = "error_contrast" in combiner.names if contrast is None else contrast
    patches = candidate_patches(grid, table, int(meta["patch_px"]), float(meta["patch_km"]), next(model.parameters()).device,
                                neighbours)
    found = model_evidence(model, patches, LatentMemory.from_meta(meta["latent_memory"]), precision)
    for name in MODEL_COLUMNS:
        table[name] = found[name]
    table["score"] = combiner.score(evidence_table(table))
    return table.assign(**shape_columns(found["codes"], ShapeClasses.from_meta(meta.get("shape_classes"))))


def shape_columns(codes: np.ndarray, classes: "ShapeClasses | None") -> dict[str, np.ndarray]:
    """shape_class, shape_distance and the standardised code (shape_code_1..N) of each latent code;
    a model without shape classes gives NO_CLASS, no distance and no code."""
    if classes is None:
        return {"shape_class": np.full(len(codes), NO_CLASS), "shape_distance": np.full(len(codes), np.nan)}
    shape_class, distance = classes.assign(codes)
    z = classes.standardise(codes).reshape(len(codes), -1).astype(np.float32)
    return {"shape_class": shape_class, "shape_distance": distance,
            **{name: z[:, i] for i, name in enumerate(code_columns(z.shape[1]))}}


# ------------------------------------------------------------------------------------------- a grid


def judge_grid(grid: xr.DataArray, model, meta: dict, rows: slice = slice(None), precision: str = "fp32",
               cols: slice = slice(None), contrast: bool | None = None) -> pd.DataFrame:
    """Every candidate of the grid's `rows` × `cols` (default all), measured and judged by the model (at
    `precision`; `contrast` as `judge`'s): the candidates table a score file carries (CANDIDATE_COLUMNS +
    error, error_contrast, latent_distance, score).

    Searched tile by tile (candidates.search_tiles), so a grid opened lazily is never loaded whole.
    """
    parts = [judge(grid, found, model, meta, precision, contrast)
             for found in search_tiles(grid, CandidateRules.from_meta(meta), rows, cols)]
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=float) for name in (*CANDIDATE_COLUMNS, *JUDGED_COLUMNS)})
    # In grid order: the same table however the rows were cut into blocks or tiles.
    return pd.concat(parts, ignore_index=True).sort_values(["row", "col"], kind="stable").reset_index(drop=True)


SHAPE_COLUMNS = ("shape_class", "shape_distance")
JUDGED_COLUMNS = (*MODEL_COLUMNS, "score", *SHAPE_COLUMNS)
CANDIDATE_ATTRS = {
    "row": {"long_name": "summit row in the grid"},
    "col": {"long_name": "summit column in the grid"},
    "x": {"long_name": "summit x (grid coordinates)"},
    "y": {"long_name": "summit y (grid coordinates)"},
    "centre_x": {"long_name": "edifice centre x: centroid of the top above base + 80 % of the height"},
    "centre_y": {"long_name": "edifice centre y: centroid of the top above base + 80 % of the height"},
    "breaks_surface": {"units": "1", "long_name": "1 if the summit is a small island (the edifice breaks the sea surface)"},
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
    "shape_class": {"units": "1", "long_name": "nearest of the model's shape classes (1 = lowest kind; 0 = the model has none)"},
    "shape_distance": {"units": "1", "long_name": "distance of the standardised latent code from its shape class's centroid"},
    "shape_code": {"units": "1", "long_name": "standardised latent code, one dimension"},
}


def candidates_dataset(table: pd.DataFrame) -> xr.Dataset:
    """The candidates table as `candidate_*` variables along the dimension `candidate`."""
    data = {}
    kind = {"row": np.int64, "col": np.int64, "breaks_surface": np.int8, "shape_class": np.int8}
    for name in (*CANDIDATE_COLUMNS, *JUDGED_COLUMNS, *code_columns(list(table.columns))):
        values = table[name].to_numpy()
        values = values.astype(np.float32 if name.startswith("shape_code_") else kind.get(name, np.float64))
        data[f"candidate_{name}"] = ("candidate", values, CANDIDATE_ATTRS["shape_code" if name.startswith("shape_code_") else name])
    return xr.Dataset(data)


def candidates_from_dataset(ds: xr.Dataset) -> pd.DataFrame:
    """The candidates table of a score dataset (empty if it has none)."""
    codes = code_columns([str(v).removeprefix("candidate_") for v in ds.data_vars])
    names = [n for n in (*CANDIDATE_COLUMNS, *JUDGED_COLUMNS, *codes) if f"candidate_{n}" in ds]
    return pd.DataFrame({n: ds[f"candidate_{n}"].values for n in names})
