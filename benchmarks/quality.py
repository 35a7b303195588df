"""Detection quality of seamountae against a traditional detector, on real and synthetic grids.

    python benchmarks/quality.py                 # full run (writes benchmarks/results/quality.json)
    python benchmarks/quality.py --quick         # smoke run: 2 seeds, 5 epochs
    python benchmarks/quality.py --only azores   # or synthetic / resolution
    python benchmarks/quality.py --json          # JSON on stdout (the table then goes to stderr)

seamountae runs through its library functions with the project's default parameters
(seamountae.config.defaults), so the numbers follow whatever the library does today. The
traditional detector (benchmarks/traditional.py: residual relief above a 60 km running median,
one summit per blob above `min_residual_m`) runs on the same grids in the same run, its threshold
chosen by best F1 on data the evaluation does not use.

Cases
(a) Azores (../shared/data/azores): train on the catalogue seamounts west of 28°W (patches cut from
    the whole grid), score the whole grid, keep detections east of 28°W, evaluate against the
    catalogue east of 28°W. Recall counts entries with grid_relief_m >= 500; a detection matched to
    any catalogue entry counts as true (precision is a lower bound: the catalogue is incomplete).
    The mirrored split (train east, evaluate west, across the Mid-Atlantic Ridge) is reported too.
(b) Synthetic (seamountae.synth): a model trained on separate synthetic grids (seeds 1000+: one
    "plain", one "fabric") scores seeds 0..N-1 of "plain", "fabric", "gaps" and "empty". Recall
    counts truth seamounts with height_m >= 500 (recall over all truth is shown too); counts are
    pooled over seeds before P/R/F1, and the per-seed F1 range is shown.
(c) Resolution: the Azores model (trained at 1′) scores the grid resampled to 0.5′ and 2′; the
    east-side F1 is compared with the native one. The same for one synthetic plain seed.

Matching is one-to-one, nearest first, within MATCH_KM = 10 km. False detections per 10⁴ km² use
the area of the evaluated grid's valid (non-NaN) cells. Nothing is cached between runs.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

import seamountae
from seamountae.catalogue import read_catalogue
from seamountae.config import defaults
from seamountae.detection import detect
from seamountae.evaluation import evaluate
from seamountae.grid import KM_PER_DEGREE, canonical_grid, read_grid
from seamountae.patches import tile
from seamountae.scoring import score
from seamountae.synth import synthesize
from seamountae.training import train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from traditional import residual_relief, traditional_detect  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "../shared/data/azores"
RESULTS = ROOT / "benchmarks" / "results"

MATCH_KM = 10.0
MIN_TARGET_M = 500.0  # recall counts reference seamounts at least this high
SPLIT_LON = -28.0
TRADITIONAL_CANDIDATES_M = (300, 400, 500, 600, 700)
TRADITIONAL_WINDOW_KM = 60.0
SCENARIOS = ("plain", "fabric", "gaps", "empty")
TRAIN_SYNTH = ((1000, "plain"), (1001, "fabric"))  # disjoint from the test seeds 0..N-1
RESOLUTIONS_ARCMIN = (0.5, 2.0)

TARGETS = {
    "azores_margin": 0.10,  # F1(seamountae) - F1(traditional), east of 28°W
    "plain_f1": 0.95,
    "fabric_f1": 0.80,
    "empty_false_per_10k": 0.1,
    "resolution_df1": 0.05,
}

log = logging.getLogger("quality")


# ----------------------------------------------------------------------------- helpers


def accepted(func, params: dict) -> dict:
    """The keys of `params` that `func` accepts (new config keys must not break the benchmark)."""
    sig = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
        return dict(params)
    return {k: v for k, v in params.items() if k in sig}


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


def side(table: pd.DataFrame, which: str) -> pd.DataFrame:
    lon = pd.to_numeric(table["lon"], errors="coerce")
    keep = lon >= SPLIT_LON if which == "east" else lon < SPLIT_LON
    return table[keep.to_numpy()].reset_index(drop=True)


def lon_range(which: str) -> tuple[float, float]:
    return (SPLIT_LON, math.inf) if which == "east" else (-math.inf, SPLIT_LON)


def counts(found: pd.DataFrame, reference: pd.DataFrame, area_km2: float, height_column: str) -> dict:
    """evaluate() reduced to the counts that pool over grids, plus the mistakes for diagnosis."""
    res = evaluate(found, reference, match_km=MATCH_KM, min_height_m=MIN_TARGET_M,
                   height_column=height_column, area_km2=area_km2)
    # The mistakes, compactly (one short list per item, columns named once), for maps and diagnosis.
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
    s = {k: sum(p[k] for p in parts) for k in ("n_found", "tp", "fp", "n_targets", "matched_targets", "n_reference", "area_km2")}
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
    res = canonical_grid(out.values, x, y, geographic=bool(int(grid.attrs.get("geographic", 0))),
                         crs=grid.attrs.get("crs"), source=f"{grid.attrs.get('source', '')} resampled x{spacing_factor:g}",
                         mask_land=True)
    return res


def tile_many(pairs: list[tuple[xr.DataArray, pd.DataFrame]]) -> xr.Dataset:
    """Training patches of several grids in one patch set (seamount ids kept distinct across grids)."""
    sets, offset = [], 0
    for grid, catalogue in pairs:
        p = tile(grid, catalogue, **stage_params("tile", tile))
        p = p.assign(seamount=p["seamount"] + offset)
        offset = int(p["seamount"].max()) + 1
        sets.append(p)
    if len(sets) == 1:
        return sets[0]
    merged = xr.concat(sets, dim="sample", combine_attrs="override")
    if "n_seamounts" in merged.attrs:
        merged.attrs["n_seamounts"] = int(len(np.unique(merged["seamount"].values)))
    return merged


class Seamountae:
    """The library's pipeline with default parameters (epochs overridable for --quick)."""

    def __init__(self, epochs: int | None, timings: dict):
        self.epochs = epochs
        self.timings = timings
        # Within one run only: the same grid scored by the same model twice (the native-resolution
        # rows repeat the Azores and synthetic cases) is scored once. Nothing outlives the run.
        self._found: dict = {}

    def _time(self, key, t0):
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - t0

    def fit(self, pairs, label):
        t0 = time.perf_counter()
        patches = tile_many(pairs)
        self._time("tile_s", t0)
        t0 = time.perf_counter()
        extra = {"epochs": self.epochs} if self.epochs else {}
        params = stage_params("train", train, **extra)
        log.info("training %s: %d patches of %s seamounts, %s", label, patches.sizes["sample"],
                 patches.attrs.get("n_seamounts", "?"), params)
        model, meta = train(patches, **params, progress=False)
        self._time("train_s", t0)
        log.info("trained %s in %.0f s", label, time.perf_counter() - t0)
        return model, meta

    def find(self, grid, model_meta):
        model, meta = model_meta
        key = (grid.attrs.get("source"), grid.shape, float(grid.x[0]), float(grid.x[1]), id(model))
        if key in self._found:
            return self._found[key][1].copy()
        t0 = time.perf_counter()
        scores = score(grid, model, meta, **stage_params("score", score))
        self._time("score_s", t0)
        t0 = time.perf_counter()
        table, _ = detect(scores, **stage_params("detect", detect))
        self._time("detect_s", t0)
        self._found[key] = (model, table)  # holding the model keeps id(model) unique
        return table.copy()


def traditional_choose(evals: list[tuple[xr.DataArray, np.ndarray, object]]) -> tuple[float, dict]:
    """Best min_residual_m by pooled F1 over `evals` = [(grid, residual, scorer(found) -> counts)]."""
    f1s = {}
    for m in TRADITIONAL_CANDIDATES_M:
        parts = [scorer(traditional_detect(grid, m, TRADITIONAL_WINDOW_KM, residual=res)) for grid, res, scorer in evals]
        f1s[m] = metrics(parts)["f1"] or 0.0
    best = max(TRADITIONAL_CANDIDATES_M, key=lambda m: (f1s[m], -abs(m - 500)))
    return float(best), {str(k): v for k, v in f1s.items()}


def row(case, method, m, note="", **extra):
    return {"case": case, "method": method, **{k: m[k] for k in (
        "n_found", "tp", "fp", "n_targets", "matched_targets", "n_reference", "area_km2",
        "precision", "recall", "recall_all", "f1", "false_per_10k_km2")}, "note": note, **extra}


# ----------------------------------------------------------------------------- (a) Azores


def run_azores(sm: Seamountae, out: dict, need_mirror: bool = True) -> tuple | None:
    grid_path, cat_path = DATA / "azores_bathy_1m.nc", DATA / "azores_catalogue.csv"
    if not (grid_path.exists() and cat_path.exists()):
        log.warning("skipping Azores: %s not found (see ../shared/data/README.md)", DATA.resolve())
        out["azores"] = {"skipped": f"{DATA} not found"}
        return None
    grid = read_grid(grid_path)  # the library defaults (config "grid" holds CLI spellings: var="", "auto")
    catalogue = read_catalogue(cat_path)
    residual = residual_relief(grid, TRADITIONAL_WINDOW_KM)
    rows, detail = [], {"grid": str(grid_path.resolve()), "catalogue": str(cat_path.resolve()),
                        "split_lon": SPLIT_LON, "height_column": "grid_relief_m"}
    models = {}
    splits = [("west", "east")] + ([("east", "west")] if need_mirror else [])
    for train_side, eval_side in splits:
        case = f"azores {train_side[0].upper()}→{eval_side[0].upper()}"
        train_cat = side(catalogue, train_side)
        eval_cat = side(catalogue, eval_side)
        area = valid_area_km2(grid, lon_range(eval_side))
        model_meta = sm.fit([(grid, train_cat)], f"Azores {train_side}")
        models[train_side] = model_meta
        log.info("scoring the Azores grid with the %s model", train_side)
        found = side(sm.find(grid, model_meta), eval_side)
        c_sm = counts(found, eval_cat, area, "grid_relief_m")
        m_sm = metrics([c_sm])

        tune_cat, tune_area = side(catalogue, train_side), valid_area_km2(grid, lon_range(train_side))
        chosen, tune_f1 = traditional_choose([(grid, residual, lambda f: counts(side(f, train_side), tune_cat, tune_area, "grid_relief_m"))])
        log.info("%s: traditional min_residual_m = %g (best F1 on the %s half: %s)", case, chosen, train_side, tune_f1)
        c_tr = counts(side(traditional_detect(grid, chosen, TRADITIONAL_WINDOW_KM, residual=residual), eval_side),
                      eval_cat, area, "grid_relief_m")
        m_tr = metrics([c_tr])
        rows.append(row(case, "seamountae", m_sm))
        rows.append(row(case, "traditional", m_tr, note=f"min_residual_m={chosen:g}"))
        detail[case] = {
            "train_side": train_side, "eval_side": eval_side,
            "n_train_seamounts": int(len(train_cat)),
            "n_eval_catalogue": int(len(eval_cat)),
            "eval_area_km2": area,
            "seamountae": {"metrics": m_sm, "false_detections": c_sm["false_detections"], "misses": c_sm["misses"],
                           "training": {k: model_meta[1].get("training", {}).get(k) for k in ("n_patches", "n_seamounts", "fit_error_median")}},
            "traditional": {"metrics": m_tr, "min_residual_m": chosen, "selection_f1_on_" + train_side: tune_f1,
                            "false_detections": c_tr["false_detections"], "misses": c_tr["misses"]},
        }
    out["azores"] = detail
    out["rows"].extend(rows)
    return grid, catalogue, models["west"], detail


# ----------------------------------------------------------------------------- (b) synthetic


def synth_counts(found, truth, grid):
    return counts(found, truth, valid_area_km2(grid), "height_m")


def run_synthetic(sm: Seamountae, out: dict, n_seeds: int, test: bool = True):
    t0 = time.perf_counter()
    train_grids = [(synthesize(seed=s, scenario=sc), s, sc) for s, sc in TRAIN_SYNTH]
    model_meta = sm.fit([(g, t) for (g, t), _, _ in train_grids], "synthetic " + "+".join(f"{sc}:{s}" for s, sc in TRAIN_SYNTH))
    if not test:
        return model_meta
    residuals = [(g, residual_relief(g, TRADITIONAL_WINDOW_KM), (lambda g, t: lambda f: synth_counts(f, t, g))(g, t))
                 for (g, t), _, _ in train_grids]
    chosen, tune_f1 = traditional_choose(residuals)
    log.info("synthetic: traditional min_residual_m = %g (best pooled F1 on the training grids: %s)", chosen, tune_f1)
    detail = {"train_grids": [{"seed": s, "scenario": sc, "n_truth": int(len(t))} for (g, t), s, sc in train_grids],
              "test_seeds": list(range(n_seeds)), "height_column": "height_m",
              "traditional_min_residual_m": chosen, "traditional_selection_f1": tune_f1, "scenarios": {}}
    for scenario in SCENARIOS:
        per_seed = {"seamountae": [], "traditional": []}
        for seed in range(n_seeds):
            grid, truth = synthesize(seed=seed, scenario=scenario)
            log.info("synthetic %s seed %d: %d seamounts (%d ≥ %g m), %.1f%% missing", scenario, seed, len(truth),
                     int((truth["height_m"] >= MIN_TARGET_M).sum()), MIN_TARGET_M, 100 * float(np.isnan(grid.values).mean()))
            for method, found in (("seamountae", sm.find(grid, model_meta)),
                                  ("traditional", traditional_detect(grid, chosen, TRADITIONAL_WINDOW_KM))):
                c = synth_counts(found, truth, grid)
                per_seed[method].append({"seed": seed, **c, **{k: v for k, v in metrics([c]).items() if k not in c}})
        d = {}
        for method, seeds in per_seed.items():
            m = metrics(seeds)
            f1s = [s["f1"] for s in seeds if s["f1"] is not None]
            fps = [s["false_per_10k_km2"] for s in seeds]
            spread = {"f1_min": min(f1s) if f1s else None, "f1_max": max(f1s) if f1s else None,
                      "false_per_10k_min": min(fps), "false_per_10k_max": max(fps)}
            note = f"min_residual_m={chosen:g}" if method == "traditional" else ""
            out["rows"].append(row(f"synth {scenario} ×{n_seeds}", method, m, note=note, **spread))
            d[method] = {"metrics": m, "spread": spread, "per_seed": seeds}
        detail["scenarios"][scenario] = d
    out["synthetic"] = detail
    t = time.perf_counter() - t0
    log.info("synthetic suite done in %.0f s", t)
    return model_meta


# ----------------------------------------------------------------------------- (c) resolution


def run_resolution(sm: Seamountae, out: dict, azores, synth_model):
    detail = {}
    if azores is not None:
        grid, catalogue, model_meta, _ = azores
        eval_cat = side(catalogue, "east")
        res = {}
        for factor in (1.0, *RESOLUTIONS_ARCMIN):
            g = grid if factor == 1.0 else resample(grid, factor)
            log.info("resolution: Azores at %g′ (%d × %d)", factor, *g.shape)
            found = side(sm.find(g, model_meta), "east")
            res[factor] = metrics([counts(found, eval_cat, valid_area_km2(g, lon_range("east")), "grid_relief_m")])
        detail["azores"] = _resolution_rows(out, "azores W→E", res)
    if synth_model is not None:
        grid, truth = synthesize(seed=0, scenario="plain")
        res = {}
        for factor in (1.0, *RESOLUTIONS_ARCMIN):
            g = grid if factor == 1.0 else resample(grid, factor)
            log.info("resolution: synthetic plain seed 0 at %g′ (%d × %d)", factor, *g.shape)
            res[factor] = metrics([synth_counts(sm.find(g, synth_model), truth, g)])
        detail["synthetic_plain_seed0"] = _resolution_rows(out, "synth plain seed 0", res)
    out["resolution"] = detail


def _resolution_rows(out, case, res):
    native = res[1.0]["f1"]
    d = {}
    for factor, m in res.items():
        df1 = None if factor == 1.0 or m["f1"] is None or native is None else m["f1"] - native
        note = "native (trained at 1′)" if factor == 1.0 else f"ΔF1 {df1:+.3f}"
        out["rows"].append(row(f"{case} @{factor:g}′", "seamountae", m, note=note, delta_f1=df1))
        d[f"{factor:g}arcmin"] = {"metrics": m, "delta_f1": df1}
    return d


# ----------------------------------------------------------------------------- report


def targets(out: dict) -> list[dict]:
    lines = []
    az = [r for r in out["rows"] if r["case"] == "azores W→E"]
    if az:
        sm, tr = (next(r for r in az if r["method"] == m) for m in ("seamountae", "traditional"))
        margin = (sm["f1"] or 0) - (tr["f1"] or 0)
        lines.append({"target": f"Azores east of 28°W: F1 ≥ traditional + {TARGETS['azores_margin']:.2f}",
                      "value": f"{sm['f1']:.3f} vs {tr['f1']:.3f} (margin {margin:+.3f})",
                      "met": margin >= TARGETS["azores_margin"]})
    syn = {r["case"].split()[1]: r for r in out["rows"] if r["case"].startswith("synth ") and "×" in r["case"] and r["method"] == "seamountae"}
    syn_tr = {r["case"].split()[1]: r for r in out["rows"] if r["case"].startswith("synth ") and "×" in r["case"] and r["method"] == "traditional"}
    for scen, key, label in (("plain", "plain_f1", "Synthetic plain: F1 ≥"), ("fabric", "fabric_f1", "Synthetic rough fabric: F1 ≥")):
        if scen in syn:
            f1 = syn[scen]["f1"] or 0.0
            lines.append({"target": f"{label} {TARGETS[key]:.2f}",
                          "value": f"{f1:.3f} (per seed {_fmt(syn[scen]['f1_min'])}–{_fmt(syn[scen]['f1_max'])}; traditional {_fmt(syn_tr[scen]['f1'])})",
                          "met": f1 >= TARGETS[key]})
    if "empty" in syn:
        v = syn["empty"]["false_per_10k_km2"]
        lines.append({"target": f"Seamount-free grids: ≤ {TARGETS['empty_false_per_10k']:g} false detections per 10⁴ km²",
                      "value": f"{v:.3f} ({syn['empty']['n_found']} detections; traditional {syn_tr['empty']['false_per_10k_km2']:.3f})",
                      "met": v <= TARGETS["empty_false_per_10k"]})
    for r in out["rows"]:
        if r.get("delta_f1") is not None:
            lines.append({"target": f"Resolution {r['case']}: |ΔF1| ≤ {TARGETS['resolution_df1']:.2f} vs native",
                          "value": f"{r['f1']:.3f} (ΔF1 {r['delta_f1']:+.3f})",
                          "met": abs(r["delta_f1"]) <= TARGETS["resolution_df1"]})
    return lines


def _fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


COLUMNS = (("case", 24, "s"), ("method", 12, "s"), ("n_found", 8, "d"), ("precision", 6, ".3f"), ("recall", 6, ".3f"),
           ("f1", 6, ".3f"), ("false_per_10k_km2", 10, ".3f"), ("recall_all", 6, ".3f"), ("f1_range", 12, "s"), ("note", 0, "s"))
HEADERS = {"precision": "P", "recall": "R", "f1": "F1", "false_per_10k_km2": "false/10⁴km²", "recall_all": "R_all",
           "f1_range": "F1 min–max"}


def _cells(r):
    rng = f"{_fmt(r.get('f1_min'))}–{_fmt(r.get('f1_max'))}" if r.get("f1_min") is not None else ""
    vals = {**r, "f1_range": rng}
    return [(_fmt(vals[c], f) if f != "s" else str(vals[c])) for c, _, f in COLUMNS]


def format_table(out: dict) -> str:
    head = [HEADERS.get(c, c) for c, _, _ in COLUMNS]
    lines = ["  ".join(h.ljust(w) if i < 2 else h.rjust(w) for i, (h, (_, w, _)) in enumerate(zip(head, COLUMNS)))]
    for r in out["rows"]:
        cells = _cells(r)
        lines.append("  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, (_, w, _)) in enumerate(zip(cells, COLUMNS))))
    lines.append("")
    lines.append(f"P: detections matched one-to-one to any reference seamount within {MATCH_KM:g} km; "
                 f"R: over reference seamounts ≥ {MIN_TARGET_M:g} m (Azores: grid_relief_m, synthetic: height_m); "
                 "R_all: over all reference seamounts.")
    lines.append("Azores precision is a lower bound (uncatalogued seamounts count as false). "
                 "Synthetic rows pool counts over seeds; F1 min–max is the per-seed spread.")
    lines.append("")
    lines.append("Targets:")
    for t in out["targets"]:
        lines.append(f"  [{'yes' if t['met'] else 'NO '}] {t['target']}: {t['value']}")
    lines.append("")
    lines.append(f"runtime {out['runtime_s']:.0f} s wall, {out['cpu_time_s']:.0f} s CPU "
                 f"(load average {out['load_average_1min']['start']:.1f} → {out['load_average_1min']['end']:.1f}); seamountae {out['seamountae_version']}, commit {out['git']['commit'] or '?'}"
                 f"{' (+ uncommitted changes)' if out['git']['dirty'] else ''}; {out['machine']}")
    return "\n".join(lines)


def format_markdown(out: dict) -> str:
    head = ["case", "method", "n_found", "P", "R", "F1", "false/10⁴ km²", "R_all", "F1 min–max", "note"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in out["rows"]:
        lines.append("| " + " | ".join(_cells(r)) + " |")
    lines.append("")
    for t in out["targets"]:
        lines.append(f"- {'✅' if t['met'] else '❌'} {t['target']}: {t['value']}")
    lines.append("")
    lines.append(f"Runtime {out['runtime_s']:.0f} s on {out['machine']}; seamountae {out['seamountae_version']}, "
                 f"commit `{(out['git']['commit'] or '?')[:10]}`{' + uncommitted changes' if out['git']['dirty'] else ''}.")
    return "\n".join(lines) + "\n"


def git_info() -> dict:
    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--", "seamountae", "benchmarks")
    return {"commit": commit, "dirty": bool(status), "changed": status.splitlines() if status else []}


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 5 training epochs")
    ap.add_argument("--only", choices=("azores", "synthetic", "resolution"), help="run one part only")
    ap.add_argument("--seeds", type=int, default=None, help="synthetic test seeds per scenario (default 5, --quick 2)")
    ap.add_argument("--json", action="store_true", help="print the JSON on stdout (the table goes to stderr)")
    ap.add_argument("--output", type=Path, default=None,
                    help="JSON path (default benchmarks/results/quality.json for a full run, "
                         "quality-quick.json / quality-<part>.json otherwise); a .md table is written beside it")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    n_seeds = args.seeds if args.seeds is not None else (2 if args.quick else 5)
    if not 1 <= n_seeds <= min(s for s, _ in TRAIN_SYNTH):
        ap.error(f"--seeds must be between 1 and {min(s for s, _ in TRAIN_SYNTH)} (training seeds start there)")
    epochs = 5 if args.quick else None
    parts = {args.only} if args.only else {"azores", "synthetic", "resolution"}

    start, cpu_start = time.perf_counter(), time.process_time()
    load_start = os.getloadavg()
    timings: dict = {}
    sm = Seamountae(epochs, timings)
    out = {
        "benchmark": "quality",
        "seamountae_version": seamountae.__version__,
        "git": git_info(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
                   f"({'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU'}, {torch.get_num_threads()} threads)",
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "mode": "quick" if args.quick else "full",
        "parts": sorted(parts),
        "parameters": {
            "seamountae": {stage: {**defaults(stage), **({"epochs": epochs} if stage == "train" and epochs else {})}
                           for stage in ("grid", "tile", "train", "score", "detect")},
            "match_km": MATCH_KM, "min_target_height_m": MIN_TARGET_M, "split_lon": SPLIT_LON,
            "traditional": {"window_km": TRADITIONAL_WINDOW_KM, "min_residual_candidates_m": list(TRADITIONAL_CANDIDATES_M)},
            "synthetic": {"scenarios": list(SCENARIOS), "test_seeds": list(range(n_seeds)),
                          "train_grids": [{"seed": s, "scenario": sc} for s, sc in TRAIN_SYNTH]},
            "resolutions_arcmin": [1.0, *RESOLUTIONS_ARCMIN],
        },
        "targets_spec": TARGETS,
        "rows": [],
    }

    azores = None
    if parts & {"azores", "resolution"}:
        if "azores" in parts:
            azores = run_azores(sm, out)
        else:  # resolution alone needs only the west-trained model
            sub: dict = {"rows": []}
            azores = run_azores(sm, sub, need_mirror=False)
    synth_model = None
    if "synthetic" in parts:
        synth_model = run_synthetic(sm, out, n_seeds)
    elif "resolution" in parts:
        synth_model = run_synthetic(sm, out, n_seeds, test=False)
    if "resolution" in parts:
        run_resolution(sm, out, azores, synth_model)

    out["runtime_s"] = time.perf_counter() - start
    out["cpu_time_s"] = time.process_time() - cpu_start
    out["load_average_1min"] = {"start": load_start[0], "end": os.getloadavg()[0]}
    out["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    out["targets"] = targets(out)
    table = format_table(out)

    if args.output is not None:
        path = args.output
    elif args.quick:
        path = RESULTS / "quality-quick.json"
    elif args.only:
        path = RESULTS / f"quality-{args.only}.json"
    else:
        path = RESULTS / "quality.json"
    text = to_json(out)
    write_atomic(path, text + "\n")
    write_atomic(path.with_suffix(".md"), format_markdown(out))
    log.info("wrote %s and %s (%.0f s)", path, path.with_suffix(".md").name, out["runtime_s"])
    if args.json:
        print(table, file=sys.stderr)
        print(text)
    else:
        print(table)
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
