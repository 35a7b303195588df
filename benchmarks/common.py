"""What the benchmarks share: the data's paths, the seamountae pipeline at its defaults, the cases and
their counts, the reference catalogues, candidate labels and AUCs, and the JSON/Markdown writers.

Every benchmark imports this module and `traditional.py`, and no benchmark imports another, so
their dependencies run one way.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import re
import subprocess
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.stats import rankdata

from seamountae.calibration import calibrate
from seamountae.catalogue import read_catalogue, union
from seamountae.config import EVIDENCE, MATCH_KM, MODEL_EVIDENCE, check, defaults
from seamountae.errors import SeamountaeError
from seamountae.detection import detect
from seamountae.evaluation import evaluate, match_catalogues
from seamountae.evidence import candidates_from_dataset, evidence_table
from seamountae.geometry import KM_PER_DEGREE, GridGeometry, haversine_km
from seamountae.grid import canonical_grid, read_grid
from seamountae.scoring import score
from seamountae.tile import concat_patches, tile
from seamountae.training import train
from traditional import traditional_detect

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "../shared/data"
RESULTS = ROOT / "benchmarks" / "results"

NEAR_CATALOGUE_KM = 15.0  # planted case: a detection this close to a catalogued seamount counts neither way
MIN_TARGET_M = 500.0  # recall counts reference seamounts at least this high
SPLIT_LON = -28.0
CELL_M = 463.3  # 15 arc-seconds at the equator: the synthetic Terrain's cells

log = logging.getLogger("benchmarks")


def accepted(func, params: dict) -> dict:
    """The keys of `params` that `func` accepts (new config keys must not break the benchmark)."""
    sig = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
        return dict(params)
    return {k: v for k, v in params.items() if k in sig}


def train_overrides(pairs: list[str]) -> dict:
    """--train KEY=VALUE pairs as [train] parameters, each checked as a config file's would be."""
    out = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        if key not in defaults("train") or not text:
            raise SystemExit(f"--train {pair}: give KEY=VALUE with a [train] parameter ({', '.join(defaults('train'))})")
        value = tomllib.loads(f"v = {text}")["v"]
        problem = check("train", key, value)
        if problem:
            raise SystemExit(f"--train {pair}: {problem}")
        out[key] = value
    return out


def stage_params(stage: str, func, **overrides) -> dict:
    return accepted(func, {**defaults(stage), **overrides})


def valid_area_km2(grid: xr.DataArray, lon_range: tuple[float, float] | None = None) -> float:
    """Area (km²) of the grid's non-NaN cells, optionally only those with lon in [lo, hi)."""
    dy = float(grid.y[1] - grid.y[0])
    dx = float(grid.x[1] - grid.x[0])
    valid = np.isfinite(grid.values)
    if lon_range is not None:
        x = grid.x.values
        valid = valid & ((x >= lon_range[0]) & (x < lon_range[1]))[None, :]
    if int(grid.attrs.get("geographic", 0)):
        row_km2 = (dy * KM_PER_DEGREE) * (dx * KM_PER_DEGREE) * np.cos(np.radians(grid.y.values))
    else:
        row_km2 = np.full(grid.sizes["y"], dy * dx / 1e6)
    return float((valid.sum(1) * row_km2).sum())


def side(table: pd.DataFrame, which: str | None) -> pd.DataFrame:
    if which is None:
        return table.reset_index(drop=True)
    lon = pd.to_numeric(table["lon"], errors="coerce")
    keep = lon >= SPLIT_LON if which == "east" else lon < SPLIT_LON
    return table[keep.to_numpy()].reset_index(drop=True)


def lon_range(which: str | None) -> tuple[float, float] | None:
    return None if which is None else (SPLIT_LON, math.inf) if which == "east" else (-math.inf, SPLIT_LON)


def far_from(table: pd.DataFrame, others: pd.DataFrame | None, km: float) -> pd.DataFrame:
    """The rows of `table` farther than `km` from every row of `others`."""
    if others is None or not len(table) or not len(others):
        return table.reset_index(drop=True)
    d = haversine_km(table["lon"].to_numpy(float)[:, None], table["lat"].to_numpy(float)[:, None],
                     others["lon"].to_numpy(float)[None], others["lat"].to_numpy(float)[None])
    return table[d.min(1) > km].reset_index(drop=True)


class Case:
    """One evaluation: a reference, the part of a grid evaluated, and what counts neither way."""

    def __init__(self, name, grid, reference, height_column, region=None, ignore=None, confounders=None):
        self.name, self.grid, self.reference, self.height_column = name, grid, reference, height_column
        self.region, self.ignore = region, ignore  # region: "east"/"west"/None; ignore: catalogue or None
        self.confounders = confounders  # planted non-seamounts (synth.plant_confounders' table) or None
        self.area_km2 = valid_area_km2(grid, lon_range(region))

    def found(self, table: pd.DataFrame) -> pd.DataFrame:
        return far_from(side(table, self.region), self.ignore, NEAR_CATALOGUE_KM)

    def counts(self, table: pd.DataFrame) -> dict:
        found = self.found(table)
        out = counts(found, self.reference, self.area_km2, self.height_column)
        if self.confounders is not None:
            out.update(confounder_counts(found, out, self.confounders))
        return out


def confounder_counts(found: pd.DataFrame, counted: dict, confounders: pd.DataFrame) -> dict:
    """Of the false detections, those on a planted confounder (within its reach_km plus MATCH_KM of
    its centre), and how many confounders drew at least one: false detections at matched height."""
    cols = counted["false_detections"]["columns"]
    false = np.array([[r[cols.index("lon")], r[cols.index("lat")]] for r in counted["false_detections"]["rows"]], float).reshape(-1, 2)
    if len(false) and len(confounders):
        d = haversine_km(false[:, :1], false[:, 1:], confounders["lon"].to_numpy()[None], confounders["lat"].to_numpy()[None])
        on = d <= confounders["reach_km"].to_numpy()[None] + MATCH_KM
    else:
        on = np.zeros((len(false), len(confounders)), bool)
    return {"n_confounders": len(confounders), "confounders_hit": int(on.any(0).sum()), "false_on_confounders": int(on.any(1).sum())}


def counts(found: pd.DataFrame, reference: pd.DataFrame, area_km2: float, height_column: str) -> dict:
    """evaluate() reduced to the counts that pool over grids, plus the mistakes for diagnosis."""
    res = evaluate(found, reference, match_km=MATCH_KM, min_height_m=MIN_TARGET_M,
                   height_column=height_column, area_km2=area_km2)
    cols = [k for k in ("lon", "lat", "height_m", "score", "basal_radius_km") if k in found.columns]
    false_rows = {"columns": cols, "rows": [[_num(found.iloc[item["index"]][k], 4 if k in ("lon", "lat") else 3 if k == "score" else 1)
                                             for k in cols] for item in res["false_detections"]]}
    misses = {"columns": ["lon", "lat", "height_m", "name"],
              "rows": [[_num(item.get("lon"), 4), _num(item.get("lat"), 4), _num(item.get("height"), 0), item.get("name")]
                       for item in res["misses"]]}
    return {
        "n_found": res["n_found"], "tp": res["true_positives"], "fp": res["false_positives"],
        "n_targets": res["n_targets"], "matched_targets": res["matched_targets"],
        "n_reference": res["n_reference"], "area_km2": area_km2,
        "false_detections": false_rows, "misses": misses,
    }


def _num(v, digits=4):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return round(v, digits) if math.isfinite(v) else None


def metrics(parts: list[dict]) -> dict:
    """P, R, F1 and false detections per 10⁴ km² from counts pooled over `parts`."""
    keys = ("n_found", "tp", "fp", "n_targets", "matched_targets", "n_reference", "area_km2",
            *(k for k in ("n_confounders", "confounders_hit", "false_on_confounders") if parts and k in parts[0]))
    s = {k: sum(p[k] for p in parts) for k in keys}
    precision = s["tp"] / s["n_found"] if s["n_found"] else None
    recall = s["matched_targets"] / s["n_targets"] if s["n_targets"] else None
    recall_all = s["tp"] / s["n_reference"] if s["n_reference"] else None
    if precision is None or recall is None:
        # No detections: F1 is 0 if there was something to find, undefined on a seamount-free grid.
        f1 = 0.0 if s["n_targets"] else None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {**s, "precision": precision, "recall": recall, "recall_all": recall_all, "f1": f1,
            "false_per_10k_km2": s["fp"] / s["area_km2"] * 1e4 if s["area_km2"] else None}


def resample(grid: xr.DataArray, spacing_factor: float) -> xr.DataArray:
    """Bilinear resampling to `spacing_factor` × the grid's spacing over the same extent (NaN stays NaN)."""
    def axis(c):
        c = np.asarray(c, float)
        step = (c[-1] - c[0]) / (c.size - 1) * spacing_factor
        n = int(math.floor((c[-1] - c[0]) / step + 1e-6)) + 1
        return np.clip(c[0] + step * np.arange(n), c[0], c[-1])

    x, y = axis(grid.x), axis(grid.y)
    out = grid.interp(x=x, y=y, method="linear")
    return canonical_grid(out.values, x, y, geographic=bool(int(grid.attrs.get("geographic", 0))),
                          crs=grid.attrs.get("crs"), source=f"{grid.attrs.get('source', '')} resampled x{spacing_factor:g}",
                          mask_land=True)


def tile_many(pairs: list[tuple[xr.DataArray, pd.DataFrame]], skip_untileable: bool = False) -> xr.Dataset:
    """Training patches of several grids in one patch set. skip_untileable: a grid that `tile` refuses
    (no catalogued seamount it can cut a patch for, as on a seamount-free plain) adds nothing, as a
    user would leave it out, instead of stopping the run."""
    sets = []
    for grid, catalogue in pairs:
        try:
            sets.append(tile(grid, catalogue, **stage_params("tile", tile)))
        except SeamountaeError as e:
            if not skip_untileable:
                raise
            log.info("not trained on %s: %s", grid.attrs.get("source", "a grid"), e)
    return concat_patches(sets)


class Seamountae:
    """The library's pipeline with default parameters (epochs overridable for --quick)."""

    def __init__(self, epochs: int | None, timings: dict, train_overrides: dict | None = None):
        self.epochs = epochs
        self.timings = timings
        self.train_overrides = train_overrides or {}
        # Within one run only: the same grid scored by the same model twice is scored once.
        self._scored: dict = {}

    def _time(self, key, t0):
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0

    def fit(self, pairs, label, skip_untileable: bool = False):
        t0 = time.perf_counter()
        patches = tile_many(pairs, skip_untileable)
        self._time("tile_s", t0)
        return self.fit_patches(patches, label)

    def fit_patches(self, patches, label, **overrides):
        """train at the defaults (and `overrides`, e.g. seed) on a patch set."""
        t0 = time.perf_counter()
        extra = {**self.train_overrides, **({"epochs": self.epochs} if self.epochs else {})}
        params = stage_params("train", train, **extra, **overrides)
        log.info("training %s: %d patches of %s seamounts, %d candidates, %s", label, patches.sizes["sample"],
                 patches.attrs.get("n_seamounts", "?"), patches.sizes["candidate"], params)
        model, meta = train(patches, **params, progress=False)
        self._time("train_s", t0)
        log.info("trained %s in %.0f s: calibration F1 %.3f at %.3f", label, time.perf_counter() - t0,
                 meta["threshold"]["f1"], meta["threshold"]["value"])
        return model, meta

    def scores(self, grid, model_meta):
        model, meta = model_meta
        key = (grid.attrs.get("source"), grid.shape, float(grid.x[0]), float(grid.x[1]), id(model))
        if key not in self._scored:
            t0 = time.perf_counter()
            # Every evidence measured, error_contrast included, whichever the model's score combines:
            # the benchmarks report each one's AUC and re-combine them (`rescored`).
            self._scored[key] = (model, score(grid, model, meta, contrast=True, **stage_params("score", score)))
            self._time("score_s", t0)
        return self._scored[key][1]

    def find(self, grid, model_meta, evidence=None, method=None):
        """The catalogue of `grid` (with the score re-combined from `evidence` names, if given; by
        `detect --method`, if given)."""
        scores = self.scores(grid, model_meta)
        if evidence is not None:
            scores = rescored(scores, model_meta[1], evidence)
        t0 = time.perf_counter()
        table, _ = detect(scores, **stage_params("detect", detect, **({"method": method} if method else {})))
        self._time("detect_s", t0)
        return table


def azores_data():
    grid_path, cat_path = SHARED / "azores/azores_bathy_1m.nc", SHARED / "azores/azores_catalogue.csv"
    if not (grid_path.exists() and cat_path.exists()):
        return None
    return read_grid(grid_path), read_catalogue(cat_path)


def global_reference(grid: xr.DataArray) -> pd.DataFrame:
    """Kim & Wessel and Yesson et al. entries inside the grid, read as distributed; a Yesson peak within
    MATCH_KM of a Kim & Wessel seamount is the same seamount, counted once."""
    folder = SHARED / "catalogues"
    x0, x1, y0, y1 = float(grid.x[0]), float(grid.x[-1]), float(grid.y[0]), float(grid.y[-1])

    def inside(path, prefix):
        t = read_catalogue(path)
        names = t["id"].astype(str) if "id" in t else prefix + t["peakid"].astype(str)
        t = pd.DataFrame({"lon": t["lon"], "lat": t["lat"], "height_m": t["height_m"], "name": names})
        return t[(t.lon >= x0) & (t.lon <= x1) & (t.lat >= y0) & (t.lat <= y1)].reset_index(drop=True)

    return union([inside(folder / "KWSMTSv01.txt", "KW-"), inside(folder / "yesson2019_seamounts.csv", "Y-")], MATCH_KM)


def git_info() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--", "seamountae", "benchmarks")
    return {"commit": commit, "dirty": bool(status), "changed": status.splitlines() if status else []}


def envelope(name: str, script: str, argv, t0: float) -> dict:
    """What every benchmark result opens with: what ran, on which commit and machine, for how long."""
    import platform
    import sys

    import torch

    import seamountae

    return {"benchmark": name, "seamountae_version": seamountae.__version__, "git": git_info(),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
            "command": " ".join(["python", f"benchmarks/{script}", *(argv if argv is not None else sys.argv[1:])]),
            "runtime_s": time.perf_counter() - t0}


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def readme_table(name: str, table: str, readme: Path = ROOT / "README.md") -> None:
    """Replace a benchmark's table in the README, between `<!-- NAME table: benchmarks/results/NAME.md -->`
    and `<!-- end of NAME table -->`."""
    text = readme.read_text(encoding="utf-8")
    start, end = f"<!-- {name} table: benchmarks/results/{name}.md -->", f"<!-- end of {name} table -->"
    head, rest = text.split(start, 1)
    write_atomic(readme, head + start + "\n" + table.strip() + "\n" + end + rest.split(end, 1)[1])


def to_json(out: dict) -> str:
    """Indented JSON with innermost lists on one line (the mistake tables stay short)."""
    text = json.dumps(out, indent=1, ensure_ascii=False, default=_json_default, allow_nan=False)
    # Raw newlines occur only between tokens (JSON escapes them inside strings), so this is safe.
    return re.sub(r"\[([^\[\]{}]*)\]", lambda m: "[" + re.sub(r"\n\s*", " ", m.group(1)).strip() + "]", text)


def _json_default(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.bool_):
        return bool(v)
    raise TypeError(type(v))


TRADITIONAL_CANDIDATES_M = (300, 400, 500, 600, 700, 800)
TRADITIONAL_WINDOW_KM = 60.0


def traditional_choose(evals: list[tuple[xr.DataArray, np.ndarray, object]]) -> tuple[float, dict]:
    """The traditional detector's best min_residual_m by pooled F1 over `evals` = [(grid, residual,
    scorer(found) -> counts)]: its threshold, chosen on data the evaluation does not use."""
    f1s = {}
    for m in TRADITIONAL_CANDIDATES_M:
        parts = [scorer(traditional_detect(grid, m, TRADITIONAL_WINDOW_KM, residual=res)) for grid, res, scorer in evals]
        f1s[m] = metrics(parts)["f1"] or 0.0
    best = max(TRADITIONAL_CANDIDATES_M, key=lambda m: (f1s[m], -abs(m - 500)))
    return float(best), {str(k): v for k, v in f1s.items()}


POSITIVE_KM, NEGATIVE_KM = 10.0, 15.0  # candidate labels: matched within, background beyond


def rescored(scores, meta: dict, names):
    """The score dataset re-scored by a combiner of `names` fitted to the model's own calibration
    candidates, with its threshold chosen the same way (what `train` would have made with
    `evidence = names`)."""
    cal = meta["calibration"]
    combiner, chosen = calibrate(pd.DataFrame(cal["evidence"]), np.asarray(cal["label"]), cal["n_unseen"], list(names))
    out = scores.copy()
    out["candidate_score"] = ("candidate", combiner.score(evidence_table(candidates_from_dataset(scores))))
    out.attrs = {**scores.attrs, "threshold_auto": chosen["threshold"]}
    return out


def counterpart(default_names) -> tuple[str, tuple[str, ...]]:
    """The other side of the ablation: (method label, evidence names) with the autoencoder's evidence
    added to a default without it, or removed from a default with it."""
    model = [n for n in default_names if n in MODEL_EVIDENCE]
    if model:
        return WITHOUT, tuple(n for n in default_names if n not in MODEL_EVIDENCE)
    return WITH, tuple(n for n in EVIDENCE if n in default_names or n in MODEL_EVIDENCE)


WITH, WITHOUT = "seamountae + autoencoder evidence", "seamountae without autoencoder evidence"
MAP = "error map (detect --method map)"  # the seed's detector: threshold and cluster the error map


def candidates_of(scores, meta: dict) -> pd.DataFrame:
    """A score dataset's judged candidates, with their lon/lat and, as `other_score`, the score of the
    ablation's counterpart (`counterpart`)."""
    table = candidates_from_dataset(scores)
    table["lon"], table["lat"] = table["x"], table["y"]
    other = rescored(scores, meta, counterpart(meta["combiner"]["names"])[1])
    table["other_score"] = other["candidate_score"].values
    return table


def label(candidates: pd.DataFrame, case) -> np.ndarray:
    """1 matched to a reference target, 0 background, -1 neither (see the module notes)."""
    ref = case.reference
    out = np.full(len(candidates), -1)
    if not len(ref):
        out[:] = 0
    else:
        d = haversine_km(candidates["lon"].to_numpy()[:, None], candidates["lat"].to_numpy()[:, None],
                         ref["lon"].to_numpy()[None], ref["lat"].to_numpy()[None]).min(1)
        out[d > NEGATIVE_KM] = 0
        targets = ref[pd.to_numeric(ref[case.height_column], errors="coerce") >= MIN_TARGET_M].reset_index(drop=True)
        pairs = match_catalogues(candidates, targets, match_km=POSITIVE_KM)
        out[pairs["found_index"].to_numpy()] = 1
    if case.ignore is not None and len(candidates):
        d = haversine_km(candidates["lon"].to_numpy()[:, None], candidates["lat"].to_numpy()[:, None],
                         case.ignore["lon"].to_numpy()[None], case.ignore["lat"].to_numpy()[None]).min(1)
        out[(d <= NEGATIVE_KM) & (out != 1)] = -1
    return out


def auc(values: np.ndarray, labels: np.ndarray) -> float | None:
    """Area under the ROC curve of `values` ranking label 1 above label 0 (ties count half); None if undefined."""
    values, labels = np.asarray(values, float), np.asarray(labels)
    ok = np.isfinite(values) & (labels >= 0)
    values, labels = values[ok], labels[ok]
    n1, n0 = int((labels == 1).sum()), int((labels == 0).sum())
    if not n1 or not n0:
        return None
    ranks = rankdata(values)
    return float((ranks[labels == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


# +1: higher means seamount; -1: lower means seamount.
ORIENTATION = {"log_height": 1, "log_steepness": 1, "closure": 1, "elongation": -1, "log_error": -1,
               "error_contrast": -1, "latent_distance": -1, "score": 1, "other_score": 1}
# Matched height: a region's candidates are compared only within the same quantile bin of the
# catalogued seamounts' own candidate height there, so that height, which chose the references,
# cannot separate them.
HEIGHT_BINS = 4


def height_strata(judged: pd.DataFrame, labels: np.ndarray, region: str) -> pd.DataFrame:
    """The region's labelled candidates that fall inside its seamounts' height range, each with its
    stratum (region and height bin) and its evidence."""
    height = judged["log_height"].to_numpy(float)
    seamounts = height[labels == 1]
    if seamounts.size < HEIGHT_BINS:
        return pd.DataFrame()
    edges = np.quantile(seamounts, np.linspace(0, 1, HEIGHT_BINS + 1))
    inside = (labels >= 0) & (height >= edges[0]) & (height <= edges[-1])
    bins = np.clip(np.searchsorted(edges, height, side="right") - 1, 0, HEIGHT_BINS - 1)
    columns = [c for c in ORIENTATION if c in judged and c != "other_score"]
    return judged.loc[inside, columns].assign(label=labels[inside], stratum=[f"{region}/{b}" for b in bins[inside]])


def matched_height(rows: pd.DataFrame) -> dict:
    """At matched height: the seamount model's error gap (background summits' median log error minus
    seamounts', per stratum, weighted by its seamounts; positive when the model is one-class) and
    each evidence's AUC over pairs within one stratum only."""
    if not len(rows):
        return {"n_seamounts": 0, "n_background": 0, "error_gap": None, "auc": {}}
    gap_sum = gap_weight = 0.0
    pairs = {c: [0.0, 0.0] for c in rows.columns if c in ORIENTATION}
    for _, group in rows.groupby("stratum"):
        y = group["label"].to_numpy()
        n1, n0 = int((y == 1).sum()), int((y == 0).sum())
        if not n1 or not n0:
            continue
        if "log_error" in group and n1 >= 2 and n0 >= 2:
            error = group["log_error"].to_numpy(float)
            gap_sum += n1 * (np.nanmedian(error[y == 0]) - np.nanmedian(error[y == 1]))
            gap_weight += n1
        for column, acc in pairs.items():
            a = auc(ORIENTATION[column] * group[column].to_numpy(float), y)
            if a is not None:
                acc[0] += a * n1 * n0
                acc[1] += n1 * n0
    return {"n_seamounts": int((rows["label"] == 1).sum()), "n_background": int((rows["label"] == 0).sum()),
            "error_gap": gap_sum / gap_weight if gap_weight else None,
            "auc": {c: acc[0] / acc[1] for c, acc in pairs.items() if acc[1]}}



class Terrain:
    """A deterministic synthetic sea floor: any block of rows can be made on its own, so a huge grid
    can be written strip by strip without holding it in memory."""

    def __init__(self, n_rows: int, n_cols: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.shape = (n_rows, n_cols)
        km = CELL_M / 1000.0
        # Rough floor: plane waves of 15–150 km wavelength.
        self.waves = [(rng.uniform(0, 2 * np.pi), 2 * np.pi / rng.uniform(15, 150) * km, rng.uniform(0, 2 * np.pi),
                       rng.uniform(30, 300)) for _ in range(24)]
        area_km2 = n_rows * n_cols * km * km
        n = int(area_km2 / 2500)  # one seamount per 2500 km²
        self.mounts = np.column_stack([rng.uniform(0, n_rows, n), rng.uniform(0, n_cols, n),
                                       rng.uniform(3, 12, n) / km, rng.uniform(300, 2500, n)])  # row, col, radius (cells), height
        n_holes = max(1, int(area_km2 / 200_000))  # gaps: a few percent of patches are partial
        self.holes = np.column_stack([rng.uniform(0, n_rows, n_holes), rng.uniform(0, n_cols, n_holes),
                                      rng.uniform(5, 25, n_holes) / km])

    def rows(self, r0: int, r1: int) -> np.ndarray:
        n_cols = self.shape[1]
        rr = np.arange(r0, r1, dtype=np.float64)[:, None]
        cc = np.arange(n_cols, dtype=np.float64)[None, :]
        z = np.full((r1 - r0, n_cols), -4000.0)
        for angle, k, phase, amplitude in self.waves:
            z += amplitude * np.sin(k * (rr * np.cos(angle) + cc * np.sin(angle)) + phase)
        for row, col, radius, height in self.mounts:
            if r0 - 4 * radius <= row <= r1 + 4 * radius:
                c0, c1 = max(int(col - 4 * radius), 0), min(int(col + 4 * radius) + 1, n_cols)
                z[:, c0:c1] += height * np.exp(-((rr - row) ** 2 + (cc[:, c0:c1] - col) ** 2) / (2 * radius**2))
        for row, col, radius in self.holes:
            if r0 - radius <= row <= r1 + radius:
                c0, c1 = max(int(col - radius), 0), min(int(col + radius) + 1, n_cols)
                inside = (rr - row) ** 2 + (cc[:, c0:c1] - col) ** 2 <= radius**2
                z[:, c0:c1][inside] = np.nan
        return z.astype(np.float32)

    def coords(self):
        return CELL_M * np.arange(self.shape[1]) + 500_000.0, CELL_M * np.arange(self.shape[0]) + 1_000_000.0

    def grid(self):
        x, y = self.coords()
        return canonical_grid(self.rows(0, self.shape[0]), x, y, False, "", "synthetic")

    def write_netcdf(self, path, strip: int = 256) -> None:
        """CF netCDF-4, chunked and compressed, written strip by strip (the generator stays small)."""
        import netCDF4

        x, y = self.coords()
        with netCDF4.Dataset(path, "w", format="NETCDF4") as nc:
            nc.createDimension("y", y.size)
            nc.createDimension("x", x.size)
            for name, values in (("y", y), ("x", x)):
                v = nc.createVariable(name, "f8", (name,))
                v[:] = values
                v.units = "m"
                v.standard_name = f"projection_{name}_coordinate"
            z = nc.createVariable("z", "f4", ("y", "x"), zlib=True, complevel=1, chunksizes=(256, 256),
                                  fill_value=np.float32(np.nan))
            z.units = "m"
            for r0 in range(0, y.size, strip):
                r1 = min(r0 + strip, y.size)
                z[r0:r1, :] = self.rows(r0, r1)


# ----------------------------------------------------------------------------- regions
# Every real grid the project holds, each a region of its own, grouped by ocean. A region-held-out
# benchmark trains on the other oceans and evaluates on one: neighbours share their sea floor, so
# a split within an ocean (or by random patches) would flatter a detector.


@dataclass(frozen=True)
class Region:
    name: str
    ocean: str
    file: str  # under ../shared/data
    lon: tuple[float, float] | None = None  # a longitude band of the file (the Azores halves)

    def grid(self, mask_land: bool = True) -> xr.DataArray:
        grid = read_grid(SHARED / self.file, mask_land=mask_land)
        if self.lon is not None:
            x = grid.x.values
            keep = (x >= self.lon[0]) & (x < self.lon[1])
            grid = canonical_grid(grid.values[:, keep], x[keep], grid.y.values, True, grid.attrs.get("crs"),
                                  f"{grid.attrs.get('source', '')} lon [{self.lon[0]:g}, {self.lon[1]:g})", mask_land)
        return grid

    def reference(self, grid: xr.DataArray) -> pd.DataFrame:
        """The region's reference seamounts with `grid_relief_m`, how high each stands in this grid."""
        if self.file.startswith("azores/"):
            cat = read_catalogue(SHARED / "azores/azores_catalogue.csv")
            x = cat["lon"].to_numpy(float)
            return cat[(x >= float(grid.x[0])) & (x <= float(grid.x[-1]))].reset_index(drop=True)
        ref = global_reference(grid)
        ref["grid_relief_m"] = grid_relief_m(self.grid(mask_land=False), ref)
        return ref


def _gebco(name, ocean, tile):
    return Region(name, ocean, f"gebco15s/gebco15s_{tile}.tif")


REGIONS = (
    Region("azores west", "atlantic", "azores/azores_bathy_1m.nc", (-math.inf, SPLIT_LON)),
    Region("azores east", "atlantic", "azores/azores_bathy_1m.nc", (SPLIT_LON, math.inf)),
    _gebco("guinea plain", "atlantic", "-3.72_-6.76"),
    _gebco("lesser antilles", "atlantic", "15.82_-61.3"),
    _gebco("central indian", "indian", "-6.82_86.01"),
    _gebco("laccadive", "indian", "10.43_75.75"),
    _gebco("maldives", "indian", "3.47_73.43"),
    _gebco("gulf of aden", "indian", "12.13_53.31"),
    _gebco("mascarene", "indian", "-10.8_61.55"),
    Region("ryukyu", "west pacific", "gebco15s/gebco2024_15s_ryukyu_n33_s28_w128_e134.nc"),
    _gebco("mindanao", "west pacific", "6.57_125.8"),
    _gebco("banda arc", "west pacific", "-8.61_124.9"),
    _gebco("new ireland", "south-west pacific", "-3.69_151.5"),
    _gebco("solomon", "south-west pacific", "-8.67_159.3"),
    _gebco("marshall", "south-west pacific", "9.24_167.3"),
    _gebco("hawaiian ridge", "east pacific", "20.95_-156.0"),
    _gebco("guayaquil", "east pacific", "-3.16_-80.7"),
)
OCEANS = tuple(dict.fromkeys(r.ocean for r in REGIONS))


def ocean_folds(regions=None, oceans=OCEANS):
    """(ocean, held-out regions, training regions) for each ocean with a region: a region is held out
    with its whole ocean, so neighbouring grids, which share their seafloor, are never split."""
    regions = available_regions() if regions is None else regions
    for ocean in oceans:
        held_out = [r for r in regions if r.ocean == ocean]
        if held_out:
            yield ocean, held_out, [r for r in regions if r.ocean != ocean]


def available_regions() -> tuple[Region, ...]:
    return tuple(r for r in REGIONS if (SHARED / r.file).exists())


def grid_relief_m(grid: xr.DataArray, table: pd.DataFrame) -> np.ndarray:
    """How high each catalogue entry stands in `grid` (land kept, read with mask_land=False), measured
    as the Azores catalogue's `grid_relief_m`: the highest cell within half a radius (at least 2
    cells) minus the median of the ring from 1 to 2 radii. Land counts at 0 m, so an island's edifice
    stands to sea level. The radius is the catalogue's (Kim & Wessel), from the footprint area
    (Yesson), else 10 km."""
    geometry = GridGeometry.of(grid)
    dy_km, _ = geometry.cell_size_km()
    z = np.minimum(np.asarray(grid.values, float), 0.0)
    radius = table["radius_km"].to_numpy(float) if "radius_km" in table else np.full(len(table), np.nan)
    if "area2d" in table:
        radius = np.where(np.isfinite(radius), radius, np.sqrt(table["area2d"].to_numpy(float) / np.pi))
    radius = np.where(np.isfinite(radius) & (radius > 0), radius, 10.0)
    rows, cols = geometry.index(*geometry.from_lonlat(table["lon"].to_numpy(float), table["lat"].to_numpy(float)))
    _, dx_rows = geometry.row_km(np.clip(rows, 0, geometry.ny - 1))
    out = np.full(len(table), np.nan)
    for i, (row, col, dx_km, r_km) in enumerate(zip(rows, cols, dx_rows, radius)):
        ry, rx = int(math.ceil(2 * r_km / dy_km)), int(math.ceil(2 * r_km / dx_km))
        r0, c0 = max(row - ry, 0), max(col - rx, 0)
        win = z[r0 : row + ry + 1, c0 : col + rx + 1]
        d = np.hypot((np.arange(win.shape[0])[:, None] + r0 - row) * dy_km, (np.arange(win.shape[1])[None] + c0 - col) * dx_km)
        top, ring = win[d <= max(0.5 * r_km, 2 * dy_km)], win[(d >= r_km) & (d <= 2 * r_km)]
        if np.isfinite(top).any() and np.isfinite(ring).sum() >= 4:
            out[i] = np.nanmax(top) - np.nanmedian(ring)
    return out
