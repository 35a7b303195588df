"""Detection quality of seamountae against a traditional detector, on real and synthetic grids.

    python benchmarks/quality.py                 # full run (writes benchmarks/results/quality.json, evidence.json)
    python benchmarks/quality.py --quick         # smoke run: 2 seeds, 5 epochs
    python benchmarks/quality.py --only azores   # or planted / synthetic / resolution / gebco
    python benchmarks/quality.py --json          # JSON on stdout (the tables then go to stderr)

seamountae runs through its library functions with the project's default parameters
(seamountae.config.defaults), so the numbers follow whatever the library does today. The
traditional detector (benchmarks/traditional.py: residual relief above a 60 km running median,
one summit per blob above `min_residual_m`) runs on the same grids in the same run, its threshold
chosen by best F1 on data the evaluation does not use. Every case also reports seamountae with the
model's evidence removed (the ablation: the combiner refitted on the grid's evidence alone, on the
same calibration candidates, its threshold chosen the same way), and feeds the evidence table
(benchmarks/evidence.py: the AUC of every piece of evidence over every candidate summit).

Cases
(a) Azores (../shared/data/azores): train on the catalogue seamounts west of 28°W (patches cut from
    the whole grid), score the whole grid, keep detections east of 28°W, evaluate against the
    catalogue east of 28°W. Recall counts entries with grid_relief_m >= 500; a detection matched to
    any catalogue entry counts as true (precision is a lower bound: the catalogue is incomplete).
    The mirrored split (train east, evaluate west, across the Mid-Atlantic Ridge) is reported too.
(b) Planted in the Azores: synthetic seamounts (every shape, 300-3000 m) planted east of 28°W at
    least 25 km from every catalogued seamount, found with the west model. Recall is exact; a
    detection within 15 km of a catalogued seamount counts neither way, any other unmatched one is
    a false detection on real seafloor (or an uncatalogued real seamount). "Planted among
    confounders" adds, to the same grid, one confounder per planted seamount at that seamount's
    height (synth.plant_confounders: volcanic ridge segments, tilted fault blocks, landslide
    debris), at least 25 km beyond every seamount: the false detections on them are exact, at
    matched height, and the note counts them.
(c) Synthetic (seamountae.synth): a model trained on separate synthetic grids (seeds 1000+: one
    "plain", one "fabric") scores seeds 0..N-1 of "plain", "fabric", "gaps", "empty" and
    "ridges". Recall counts truth seamounts with height_m >= 500; counts are pooled over seeds
    before P/R/F1, and the per-seed F1 range is shown.
(d) Resolution: the west Azores model (trained at 1′) scores the grid resampled to 0.25′, 0.5′ and
    2′; the east-side F1 is compared with the native one. The same for one synthetic plain seed.
(e) GEBCO 15″ (../shared/data/gebco15s): the built-in model (seamountae/models/builtin.pt, what
    `seamountae find` uses) scores the real 15″ grids; the reference is the Kim & Wessel (2011) and
    Yesson et al. (2019) catalogues together (an entry of one within 10 km of the other's counted
    once), recall over entries >= 500 m. The built-in model was trained on the Ryukyu and Marshall
    grids with those catalogues (the note says so): what a user of `find` gets there, not a held-out
    figure (benchmarks/regions.py has those). The central Indian Ocean tile has no catalogued
    seamount (so it is not a training grid): every detection there is false. The traditional
    detector's threshold is chosen on the Azores grid.

Matching is one-to-one, nearest first, within MATCH_KM = 10 km. False detections per 10⁴ km² use
the area of the evaluated grid's valid (non-NaN) cells. Nothing is cached between runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

import pandas as pd
import torch

import seamountae
from seamountae.config import defaults
from seamountae.grid import read_grid
from seamountae.model import read_model
from seamountae.models import BUILTIN
from seamountae.synth import plant, plant_confounders, synthesize

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evidence as evidence_table  # noqa: E402
from common import (MATCH_KM, MIN_TARGET_M, NEAR_CATALOGUE_KM, RESULTS, ROOT, SHARED, SPLIT_LON, TRADITIONAL_CANDIDATES_M,  # noqa: E402
                    TRADITIONAL_WINDOW_KM, MAP, WITH, WITHOUT, traditional_choose, readme_table,
                    Case, Seamountae, azores_data, candidates_of, counterpart, counts, git_info, global_reference, lon_range, metrics, resample,
                    side, to_json, train_overrides, valid_area_km2, write_atomic)
from traditional import residual_relief, traditional_detect  # noqa: E402

SCENARIOS = ("plain", "fabric", "gaps", "empty", "ridges")
SEAMOUNT_FREE = ("empty", "ridges")
TRAIN_SYNTH = ((1000, "plain"), (1001, "fabric"))  # disjoint from the test seeds 0..N-1
RESOLUTIONS_ARCMIN = (0.25, 0.5, 2.0)
PLANT_SEED = 7
GEBCO = {"ryukyu": "gebco2024_15s_ryukyu_n33_s28_w128_e134.nc", "marshall": "gebco15s_9.24_167.3.tif",
         "indian": "gebco15s_-6.82_86.01.tif"}
SEAMOUNT_FREE_TILE = "indian"

TARGETS = {
    "azores_we_margin": 0.10,  # F1(seamountae) - F1(traditional), west → east
    "azores_ew_margin": 0.05,  # east → west
    "plain_f1": 0.95,
    "fabric_f1": 0.80,
    "free_false_per_10k": 0.1,
    "planted_recall": 0.90,
    "ablation_drop": 0.05,
    "resolution_df1": 0.05,
    "gebco_margin": 0.05,
    "gebco_free_max_false": 1,
}

log = logging.getLogger("quality")


# ----------------------------------------------------------------------------- helpers


def row(case, method, m, note="", **extra):
    return {"case": case, "method": method, **{k: m[k] for k in (
        "n_found", "tp", "fp", "n_targets", "matched_targets", "n_reference", "area_km2",
        "precision", "recall", "recall_all", "f1", "false_per_10k_km2")}, "note": note,
        **{k: m[k] for k in ("n_confounders", "confounders_hit", "false_on_confounders") if k in m}, **extra}


def calibration_summary(meta: dict) -> dict:
    return {**{k: meta["threshold"][k] for k in ("value", "f1", "f1_with_model_evidence", "f1_without_model_evidence")},
            "evidence": meta["combiner"]["names"], "coef": meta["combiner"]["coef"]}


class Runner:
    """Runs the cases, keeping every row, every mistake and every candidate for the evidence table."""

    def __init__(self, sm: Seamountae, out: dict):
        self.sm, self.out = sm, out
        self.candidates: list[tuple[str, pd.DataFrame, Case]] = []

    def evaluate(self, label: str, cases: list[Case], model_meta, traditional_m: float, note: str = "", extra=None):
        """seamountae, its ablation, the error-map detector and the traditional detector on `cases` (pooled): four rows."""
        detail = {}
        other, other_evidence = counterpart(model_meta[1]["combiner"]["names"])
        per_case = {"seamountae": [], other: [], MAP: [], "traditional": []}
        for case in cases:
            scores = self.sm.scores(case.grid, model_meta)
            self.candidates.append((label, candidates_of(scores, model_meta[1]), case))
            per_case["seamountae"].append(case.counts(self.sm.find(case.grid, model_meta)))
            per_case[other].append(case.counts(self.sm.find(case.grid, model_meta, other_evidence)))
            per_case[MAP].append(case.counts(self.sm.find(case.grid, model_meta, method="map")))
            per_case["traditional"].append(case.counts(traditional_detect(case.grid, traditional_m, TRADITIONAL_WINDOW_KM)))
        for method, parts in per_case.items():
            m = metrics(parts)
            spread = {}
            if len(parts) > 1:
                f1s = [metrics([p])["f1"] for p in parts]
                f1s = [f for f in f1s if f is not None]
                spread = {"f1_min": min(f1s) if f1s else None, "f1_max": max(f1s) if f1s else None}
            text = f"min_residual_m={traditional_m:g}" if method == "traditional" else note
            if "n_confounders" in m:
                text += (f"{'; ' if text else ''}{m['false_on_confounders']} false on {m['confounders_hit']} of "
                         f"{m['n_confounders']} confounders")
            self.out["rows"].append(row(label, method, m, note=text, **spread, **(extra or {})))
            detail[method] = {"metrics": m, "per_case": [{k: v for k, v in p.items()} for p in parts] if len(parts) > 1 else
                              {"false_detections": parts[0]["false_detections"], "misses": parts[0]["misses"]}}
        return detail


# ----------------------------------------------------------------------------- (a, b, d) Azores


def traditional_on_side(grid, catalogue, which) -> tuple[float, dict]:
    residual = residual_relief(grid, TRADITIONAL_WINDOW_KM)
    cat, area = side(catalogue, which), valid_area_km2(grid, lon_range(which))
    return traditional_choose([(grid, residual, lambda f: counts(side(f, which), cat, area, "grid_relief_m"))])


def run_azores(runner: Runner, parts: set, models: dict) -> None:
    data = azores_data()
    if data is None:
        log.warning("skipping the Azores: %s not found (see ../shared/data/README.md)", SHARED.resolve())
        runner.out["azores"] = {"skipped": "../shared/data/azores not found"}
        return
    grid, catalogue = data
    sm, detail = runner.sm, {}
    for train_side, eval_side in (("west", "east"), ("east", "west")):
        if train_side == "east" and "azores" not in parts:
            continue
        key = f"azores {train_side}"
        if key not in models:
            models[key] = sm.fit([(grid, side(catalogue, train_side))], f"Azores {train_side}")
        m_tr, tune = traditional_on_side(grid, catalogue, train_side)
        if "azores" in parts:
            case = Case(f"azores {train_side[0].upper()}→{eval_side[0].upper()}", grid, side(catalogue, eval_side),
                        "grid_relief_m", eval_side)
            detail[case.name] = runner.evaluate(case.name, [case], models[key], m_tr)
            detail[case.name]["traditional_selection_f1"] = tune
            detail[case.name]["calibration"] = calibration_summary(models[key][1])
        if train_side == "west" and "planted" in parts:
            east = (SPLIT_LON, float(grid.x[-1]), float(grid.y[0]), float(grid.y[-1]))
            planted, truth = plant(grid, seed=PLANT_SEED, region=east, avoid=catalogue, avoid_km=25.0)
            log.info("planted %d seamounts east of %g°W (%d ≥ %g m)", len(truth), -SPLIT_LON,
                     int((truth["height_m"] >= MIN_TARGET_M).sum()), MIN_TARGET_M)
            case = Case("planted in Azores", planted, truth, "height_m", "east", ignore=catalogue)
            detail[case.name] = runner.evaluate(case.name, [case], models[key], m_tr, note=f"{len(truth)} planted")
            # The same seamounts among as many confounders of the same heights: here height decides nothing.
            apart = pd.concat([catalogue[["lon", "lat"]].assign(radius_km=0.0), truth[["lon", "lat", "radius_km"]]])
            both, confounders = plant_confounders(planted, truth["height_m"].to_numpy(), seed=PLANT_SEED, region=east,
                                                  avoid=apart)
            log.info("planted %d confounders (%s) among them", len(confounders),
                     ", ".join(f"{n} {k}" for k, n in confounders["kind"].value_counts().sort_index().items()))
            case = Case("planted among confounders", both, truth, "height_m", "east", ignore=catalogue, confounders=confounders)
            detail[case.name] = runner.evaluate(case.name, [case], models[key], m_tr, note=f"{len(truth)} planted")
            detail[case.name]["confounders"] = confounders.round(4).to_dict(orient="list")
        if train_side == "west" and "resolution" in parts:
            native = None
            for factor in (1.0, *RESOLUTIONS_ARCMIN):
                g = grid if factor == 1.0 else resample(grid, factor)
                log.info("resolution: Azores at %g′ (%d × %d)", factor, *g.shape)
                case = Case(f"azores W→E @{factor:g}′", g, side(catalogue, "east"), "grid_relief_m", "east")
                m = metrics([case.counts(sm.find(g, models[key]))])
                native = m["f1"] if factor == 1.0 else native
                df1 = None if factor == 1.0 else m["f1"] - native
                runner.out["rows"].append(row(case.name, "seamountae", m,
                                              note="native (trained at 1′)" if factor == 1.0 else f"ΔF1 {df1:+.3f}",
                                              delta_f1=df1))
    runner.out["azores"] = detail


# ----------------------------------------------------------------------------- (c) synthetic


def run_synthetic(runner: Runner, parts: set, n_seeds: int) -> None:
    train_grids = [synthesize(seed=s, scenario=sc) for s, sc in TRAIN_SYNTH]
    model_meta = runner.sm.fit(train_grids, "synthetic " + "+".join(f"{sc}:{s}" for s, sc in TRAIN_SYNTH))
    residuals = [(g, residual_relief(g, TRADITIONAL_WINDOW_KM), (lambda g, t: lambda f: counts(f, t, valid_area_km2(g), "height_m"))(g, t))
                 for g, t in train_grids]
    m_tr, tune = traditional_choose(residuals)
    detail = {"train_grids": [{"seed": s, "scenario": sc} for s, sc in TRAIN_SYNTH], "traditional_min_residual_m": m_tr,
              "traditional_selection_f1": tune, "calibration": calibration_summary(model_meta[1])}
    if "synthetic" in parts:
        for scenario in SCENARIOS:
            cases = []
            for seed in range(n_seeds):
                grid, truth = synthesize(seed=seed, scenario=scenario)
                cases.append(Case(f"synth {scenario} {seed}", grid, truth, "height_m"))
            label = f"synth {scenario} ×{n_seeds}"
            detail[label] = runner.evaluate(label, cases, model_meta, m_tr)
    if "resolution" in parts:
        grid, truth = synthesize(seed=0, scenario="plain")
        native = None
        for factor in (1.0, 0.5, 2.0):
            g = grid if factor == 1.0 else resample(grid, factor)
            case = Case(f"synth plain seed 0 @{factor:g}′", g, truth, "height_m")
            m = metrics([case.counts(runner.sm.find(g, model_meta))])
            native = m["f1"] if factor == 1.0 else native
            df1 = None if factor == 1.0 else m["f1"] - native
            runner.out["rows"].append(row(case.name, "seamountae", m, note="native (trained at 1′)" if factor == 1.0 else
                                          f"ΔF1 {df1:+.3f}", delta_f1=df1))
    runner.out["synthetic"] = detail


# ----------------------------------------------------------------------------- (e) GEBCO 15″


def run_gebco(runner: Runner) -> None:
    """The built-in model (what `seamountae find` uses) on the real 15″ grids."""
    data = azores_data()
    paths = {name: SHARED / "gebco15s" / f for name, f in GEBCO.items()}
    if data is None or not all(p.exists() for p in paths.values()):
        log.warning("skipping GEBCO: the Azores or ../shared/data/gebco15s not found")
        runner.out["gebco"] = {"skipped": "data not found"}
        return
    grid, catalogue = data
    model_meta = read_model(BUILTIN)
    m_tr, tune = traditional_on_side(grid, catalogue, None)
    detail = {"model": str(BUILTIN.relative_to(ROOT)), "calibration": calibration_summary(model_meta[1]),
              "traditional_selection_f1": tune}
    trained_on = {Path(source["grid"]).name for source in model_meta[1]["training"].get("sources", [])}
    for name, path in paths.items():
        g = read_grid(path)
        case = Case(f"gebco 15″ {name}", g, global_reference(g), "height_m")
        log.info("GEBCO %s: %d × %d cells, %d reference seamounts", name, *g.shape, len(case.reference))
        note = f"{len(case.reference)} in KW ∪ Yesson" + ("; a training grid (in-sample)" if path.name in trained_on else "")
        detail[case.name] = runner.evaluate(case.name, [case], model_meta, m_tr, note=note)
    runner.out["gebco"] = detail


# ----------------------------------------------------------------------------- report


def _pick(out, case, method):
    return next((r for r in out["rows"] if r["case"] == case and r["method"] == method), None)


def targets(out: dict) -> list[dict]:
    lines = []

    def add(target, value, met):
        lines.append({"target": target, "value": value, "met": bool(met)})

    for case, key in (("azores W→E", "azores_we_margin"), ("azores E→W", "azores_ew_margin")):
        sm, tr = _pick(out, case, "seamountae"), _pick(out, case, "traditional")
        if sm and tr:
            margin = (sm["f1"] or 0) - (tr["f1"] or 0)
            add(f"{case}: F1 ≥ traditional + {TARGETS[key]:.2f}", f"{sm['f1']:.3f} vs {tr['f1']:.3f} (margin {margin:+.3f})",
                margin >= TARGETS[key])
    n = {r["case"].split("×")[-1] for r in out["rows"] if r["case"].startswith("synth ") and "×" in r["case"]}
    for r in out["rows"]:
        if r["method"] != "seamountae" or "@" in r["case"]:
            continue
        tr = _pick(out, r["case"], "traditional")
        if tr and r["f1"] is not None:
            add(f"{r['case']}: F1 ≥ traditional", f"{r['f1']:.3f} vs {_fmt(tr['f1'])}", r["f1"] >= (tr["f1"] or 0))
    for scen, key, label in (("plain", "plain_f1", "Synthetic plain: F1 ≥"), ("fabric", "fabric_f1", "Synthetic fabric: F1 ≥")):
        for suffix in n:
            r = _pick(out, f"synth {scen} ×{suffix}", "seamountae")
            if r:
                add(f"{label} {TARGETS[key]:.2f}", f"{r['f1']:.3f} (per seed {_fmt(r.get('f1_min'))}–{_fmt(r.get('f1_max'))})",
                    (r["f1"] or 0) >= TARGETS[key])
    for scen in SEAMOUNT_FREE:
        for suffix in n:
            r = _pick(out, f"synth {scen} ×{suffix}", "seamountae")
            tr = _pick(out, f"synth {scen} ×{suffix}", "traditional")
            if r:
                add(f"Synthetic {scen}: ≤ {TARGETS['free_false_per_10k']:g} false detections per 10⁴ km²",
                    f"{r['false_per_10k_km2']:.3f} ({r['n_found']} detections; traditional {tr['false_per_10k_km2']:.3f})",
                    r["false_per_10k_km2"] <= TARGETS["free_false_per_10k"])
    r, tr = _pick(out, "planted in Azores", "seamountae"), _pick(out, "planted in Azores", "traditional")
    if r and tr:
        add(f"Planted in Azores: recall ≥ {TARGETS['planted_recall']:.2f} of planted ≥ {MIN_TARGET_M:g} m, fewer false "
            "detections than traditional", f"recall {_fmt(r['recall'])}, {r['false_per_10k_km2']:.3f} false per 10⁴ km² "
            f"(traditional {tr['false_per_10k_km2']:.3f})",
            (r["recall"] or 0) >= TARGETS["planted_recall"] and r["false_per_10k_km2"] < tr["false_per_10k_km2"])
    for case in ["synth fabric ×" + s for s in n] + ["planted in Azores", "azores W→E", "azores E→W"]:
        rows = {r["method"]: r for r in out["rows"] if r["case"] == case}
        default = rows.get("seamountae")
        with_ = rows.get(WITH, default if WITHOUT in rows else None)
        without = rows.get(WITHOUT, default if WITH in rows else None)
        if with_ and without and with_["f1"] is not None:
            drop = with_["f1"] - (without["f1"] or 0)
            add(f"Ablation {case}: F1 drops by ≥ {TARGETS['ablation_drop']:.2f} without the autoencoder's evidence",
                f"{with_['f1']:.3f} with, {_fmt(without['f1'])} without (drop {drop:+.3f})", drop >= TARGETS["ablation_drop"])
    for r in out["rows"]:
        if r.get("delta_f1") is not None:
            add(f"Resolution {r['case']}: |ΔF1| ≤ {TARGETS['resolution_df1']:.2f} vs native", f"{r['f1']:.3f} (ΔF1 {r['delta_f1']:+.3f})",
                abs(r["delta_f1"]) <= TARGETS["resolution_df1"])
    for name in GEBCO:
        r, tr = _pick(out, f"gebco 15″ {name}", "seamountae"), _pick(out, f"gebco 15″ {name}", "traditional")
        if not (r and tr):
            continue
        if name == SEAMOUNT_FREE_TILE:
            add(f"GEBCO 15″ {name} (no catalogued seamount): ≤ {TARGETS['gebco_free_max_false']} false detection",
                f"{r['fp']} (traditional {tr['fp']})", r["fp"] <= TARGETS["gebco_free_max_false"])
        else:
            margin = (r["f1"] or 0) - (tr["f1"] or 0)
            add(f"GEBCO 15″ {name}: F1 ≥ traditional + {TARGETS['gebco_margin']:.2f}",
                f"{_fmt(r['f1'])} vs {_fmt(tr['f1'])} (margin {margin:+.3f})", margin >= TARGETS["gebco_margin"])
    return lines


def _fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


COLUMNS = (("case", 24, "s"), ("method", 33, "s"), ("n_found", 7, "d"), ("precision", 6, ".3f"), ("recall", 6, ".3f"),
           ("f1", 6, ".3f"), ("false_per_10k_km2", 12, ".3f"), ("recall_all", 6, ".3f"), ("f1_range", 12, "s"), ("note", 0, "s"))
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
                 f"R: over reference seamounts ≥ {MIN_TARGET_M:g} m; R_all: over all reference seamounts.")
    lines.append("Real-data precision is a lower bound (uncatalogued seamounts count as false). "
                 "Synthetic rows pool counts over seeds; F1 min–max is the per-seed spread.")
    lines.append("")
    lines.append("Targets:")
    for t in out["targets"]:
        lines.append(f"  [{'yes' if t['met'] else 'NO '}] {t['target']}: {t['value']}")
    lines.append("")
    lines.append(f"runtime {out['runtime_s']:.0f} s wall, {out['cpu_time_s']:.0f} s CPU "
                 f"(load average {out['load_average_1min']['start']:.1f} → {out['load_average_1min']['end']:.1f}); "
                 f"seamountae {out['seamountae_version']}, commit {out['git']['commit'] or '?'}"
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


PARTS = ("azores", "planted", "synthetic", "resolution", "gebco")


def run_all(parts: set, n_seeds: int, epochs: int | None, overrides: dict | None = None) -> tuple[dict, Runner]:
    """Every case of `parts`: the quality report and the runner that holds every judged candidate.
    overrides: [train] parameters other than the defaults, for the models trained here (not the built-in one)."""
    overrides = overrides or {}
    start, cpu_start = time.perf_counter(), time.process_time()
    load_start = os.getloadavg()
    timings: dict = {}
    out = {
        "benchmark": "quality",
        "seamountae_version": seamountae.__version__,
        "git": git_info(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
                   f"({'CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU'}, {torch.get_num_threads()} threads)",
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "parts": sorted(parts),
        "parameters": {
            "seamountae": {stage: {**defaults(stage), **({**overrides, **({"epochs": epochs} if epochs else {})}
                                                         if stage == "train" else {})}
                           for stage in ("grid", "tile", "train", "score", "detect")},
            "match_km": MATCH_KM, "min_target_height_m": MIN_TARGET_M, "split_lon": SPLIT_LON,
            "near_catalogue_km": NEAR_CATALOGUE_KM,
            "traditional": {"window_km": TRADITIONAL_WINDOW_KM, "min_residual_candidates_m": list(TRADITIONAL_CANDIDATES_M)},
            "synthetic": {"scenarios": list(SCENARIOS), "test_seeds": list(range(n_seeds)),
                          "train_grids": [{"seed": s, "scenario": sc} for s, sc in TRAIN_SYNTH]},
            "resolutions_arcmin": [1.0, *RESOLUTIONS_ARCMIN],
        },
        "targets_spec": TARGETS,
        "rows": [],
    }
    runner = Runner(Seamountae(epochs, timings, overrides), out)
    models: dict = {}
    if parts & {"azores", "planted", "resolution"}:
        run_azores(runner, parts, models)
    if parts & {"synthetic", "resolution"}:
        run_synthetic(runner, parts, n_seeds)
    if "gebco" in parts:
        run_gebco(runner)
    out["runtime_s"] = time.perf_counter() - start
    out["cpu_time_s"] = time.process_time() - cpu_start
    out["load_average_1min"] = {"start": load_start[0], "end": os.getloadavg()[0]}
    out["timings_s"] = {k: round(v, 1) for k, v in timings.items()}
    out["targets"] = targets(out)
    return out, runner


def parse(argv, description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 5 training epochs")
    ap.add_argument("--only", choices=PARTS, action="append", help="run these parts only (repeatable)")
    ap.add_argument("--seeds", type=int, default=None, help="synthetic test seeds per scenario (default 5, --quick 2)")
    ap.add_argument("--json", action="store_true", help="print the JSON on stdout (the tables go to stderr)")
    ap.add_argument("--readme", action="store_true", help="also put the two tables into README.md (a full run's)")
    ap.add_argument("--train", metavar="KEY=VALUE", action="append", default=[],
                    help="train the models trained here with this [train] parameter instead of its default (repeatable), "
                         "e.g. outlier_weight=1; the default output's name then ends in KEY_VALUE")
    ap.add_argument("--output", type=Path, default=None,
                    help="JSON path (default benchmarks/results/quality.json for a full run, quality-quick.json / "
                         "quality-<parts>.json otherwise); a .md table is written beside it, and the evidence table "
                         "as evidence*.json/.md")
    args = ap.parse_args(argv)
    n_seeds = args.seeds if args.seeds is not None else (2 if args.quick else 5)
    if not 1 <= n_seeds <= min(s for s, _ in TRAIN_SYNTH):
        ap.error(f"--seeds must be between 1 and {min(s for s, _ in TRAIN_SYNTH)} (training seeds start there)")
    return args, n_seeds


def output_path(args) -> Path:
    if args.output is not None:
        return args.output
    tag = "".join(f"-{k}_{v}" for k, v in train_overrides(args.train).items())
    if args.quick:
        return RESULTS / f"quality-quick{tag}.json"
    if args.only:
        return RESULTS / f"quality-{'-'.join(sorted(args.only))}{tag}.json"
    return RESULTS / f"quality{tag}.json"


def main(argv=None) -> int:
    args, n_seeds = parse(argv, __doc__.split("\n\n")[0])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    parts = set(args.only) if args.only else set(PARTS)
    out, runner = run_all(parts, n_seeds, 5 if args.quick else None, train_overrides(args.train))
    evidence = evidence_table.table(runner.candidates, out)
    path = output_path(args)
    text = to_json(out)
    write_atomic(path, text + "\n")
    write_atomic(path.with_suffix(".md"), format_markdown(out))
    evidence_path = path.with_name(path.name.replace("quality", "evidence") if "quality" in path.name
                                   else f"{path.stem}-evidence{path.suffix}")
    write_atomic(evidence_path, to_json(evidence) + "\n")
    write_atomic(evidence_path.with_suffix(".md"), evidence_table.format_markdown(evidence))
    log.info("wrote %s, %s and %s (%.0f s)", path, path.with_suffix(".md").name, evidence_path.name, out["runtime_s"])
    if args.readme:
        readme_tables(format_markdown(out), evidence_table.format_markdown(evidence))
    table = format_table(out) + "\n\n" + evidence_table.format_text(evidence)
    if args.json:
        print(table, file=sys.stderr)
        print(text)
    else:
        print(table)
    return 0


def readme_tables(quality_md: str, evidence_md: str, readme: Path = ROOT / "README.md") -> None:
    """Replace the quality and evidence tables in the README (between their marker comments)."""
    for name, table in (("quality", quality_md), ("evidence", evidence_md)):
        readme_table(name, table, readme)


if __name__ == "__main__":
    sys.exit(main())
