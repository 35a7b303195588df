"""Region-held-out benchmark: every real grid the project holds, each ocean evaluated by models
trained on the other oceans only.

    python benchmarks/regions.py                # full run: writes benchmarks/results/regions.json and .md
    python benchmarks/regions.py --candidates   # the candidate search alone (no model): recall per region
    python benchmarks/regions.py --quick        # 5 epochs (a smoke run; numbers not comparable)
    python benchmarks/regions.py --readme       # and copy the table into the README

Regions (benchmarks/common.py REGIONS): the Azores grid's two halves (1′), the Ryukyu grid and 14
GEBCO 15″ tiles, grouped into five oceans. For each ocean, seamountae is trained (tile + train, the
project's defaults) on the catalogued seamounts of every other ocean's regions and scores the
held-out ocean's regions; no grid or seamount of a held-out region enters its model. The traditional
detector (benchmarks/traditional.py) runs on the same grids, its threshold chosen by pooled F1 on the
training oceans.

Methods: seamountae at its default evidence, its counterpart (the autoencoder's evidence added, or
removed where the default holds it), the seed's error-map detector (`detect --method map`, the same
model) and the traditional detector. At matched height (candidates within one height quartile of the
region's catalogued seamounts' own), the error gap is background summits' median log reconstruction
error minus seamounts' (positive when the model is one-class) and every evidence has its AUC.

References: the Azores catalogue on the Azores halves, Kim & Wessel ∪ Yesson elsewhere. Recall counts
entries that stand ≥ 500 m in the grid (`grid_relief_m`, measured the same way for every catalogue);
precision is a lower bound (the catalogues are incomplete). Matching: one to one, nearest first,
within 10 km. Candidate recall is the fraction of those entries with a candidate summit within
10 km: what the decision could find at best. Pooled rows sum the counts of the regions before P/R/F1;
the interval is a 90 % bootstrap over regions (resampled with replacement, 1000 times).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from seamountae.candidates import CandidateRules, search_tiles
from seamountae.evidence import candidates_from_dataset, evidence_table
from seamountae.geometry import haversine_km
from seamountae.synth import plant, plant_confounders

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (MATCH_KM, envelope, MIN_TARGET_M, OCEANS, ORIENTATION, RESULTS, TRADITIONAL_WINDOW_KM, MAP, Case,  # noqa: E402
                    Seamountae, available_regions, counterpart, height_strata, label, matched_height,
                    metrics, ocean_folds, readme_table, to_json, traditional_choose, train_overrides, valid_area_km2, write_atomic)
from traditional import residual_relief, traditional_detect  # noqa: E402

log = logging.getLogger("regions")
HEIGHT = "grid_relief_m"
PLANT_SEED = 7  # + the region's index
# Planted seamounts per km² of a held-out grid's seafloor: about 10 on a 15″ tile (spaced ~70 km,
# as seamounts are on Pacific crust), enough to pool over the regions.
KM2_PER_PLANTED = 5000.0
BOOTSTRAP = 1000


def targets_of(reference: pd.DataFrame) -> pd.DataFrame:
    return reference[pd.to_numeric(reference[HEIGHT], errors="coerce") >= MIN_TARGET_M].reset_index(drop=True)


def candidate_recall(candidates: pd.DataFrame, reference: pd.DataFrame) -> dict:
    """How many reference targets have a candidate summit within MATCH_KM (not one to one: a
    candidate near two targets proposes both), and the targets that have none."""
    targets = targets_of(reference)
    if not len(targets):
        return {"n_targets": 0, "proposed": 0, "unproposed": []}
    proposed = np.zeros(len(targets), bool)
    for lon, lat in (("lon", "lat"), ("centre_lon", "centre_lat")):  # at its summit or its centre
        if len(candidates) and lon in candidates:
            d = haversine_km(targets["lon"].to_numpy(float)[:, None], targets["lat"].to_numpy(float)[:, None],
                             candidates[lon].to_numpy(float)[None], candidates[lat].to_numpy(float)[None])
            proposed |= d.min(1) <= MATCH_KM
    missed = targets[~proposed]
    return {"n_targets": int(len(targets)), "proposed": int(proposed.sum()),
            "unproposed": [[round(float(r["lon"]), 4), round(float(r["lat"]), 4), round(float(r[HEIGHT])), str(r.get("name", ""))]
                           for _, r in missed.iterrows()]}


def search(grid, rules: CandidateRules) -> pd.DataFrame:
    found = list(search_tiles(grid, rules))
    table = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=["x", "y"])
    return table.assign(lon=table["x"], lat=table["y"], centre_lon=table["centre_x"], centre_lat=table["centre_y"])


def run_candidates() -> dict:
    """The candidate search alone, at the default rules, on every region."""
    rules = CandidateRules()
    rows = []
    for region in available_regions():
        t0 = time.perf_counter()
        grid = region.grid()
        case = Case(region.name, grid, region.reference(grid), HEIGHT)
        found = search(grid, rules)
        rec = candidate_recall(found, case.reference)
        rows.append({"region": region.name, "ocean": region.ocean, "n_candidates": int(len(found)),
                     "area_km2": case.area_km2, **rec, "seconds": time.perf_counter() - t0})
        log.info("%-18s %4d candidates, proposed %d of %d targets (%.1f s)", region.name, len(found),
                 rec["proposed"], rec["n_targets"], rows[-1]["seconds"])
    return {"rules": rules.as_meta(), "rows": rows}


def format_candidates(out: dict) -> str:
    lines = ["| region | ocean | candidates | targets ≥ 500 m | proposed | candidate recall |", "|---|---|---|---|---|---|"]
    total = [0, 0]
    for r in out["rows"]:
        rec = f"{r['proposed'] / r['n_targets']:.3f}" if r["n_targets"] else "-"
        lines.append(f"| {r['region']} | {r['ocean']} | {r['n_candidates']} | {r['n_targets']} | {r['proposed']} | {rec} |")
        total[0] += r["n_targets"]
        total[1] += r["proposed"]
    lines.append(f"| **all** | | {sum(r['n_candidates'] for r in out['rows'])} | {total[0]} | {total[1]} | "
                 f"{total[1] / max(total[0], 1):.3f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- full run


def run_full(epochs: int | None, oceans=None, partial: Path | None = None, overrides: dict | None = None) -> dict:
    """Per ocean (all, or `oceans`): train on the others, then seamountae (default evidence), its
    ablation counterpart, the error-map detector and the traditional detector on each held-out
    region; counts kept per region for pooling. With `partial`, what is done is written there after
    every fold (a run cut short keeps its folds; `--merge` joins the parts of runs split by ocean).
    overrides: [train] parameters other than the defaults."""
    timings: dict = {}
    sm = Seamountae(epochs, timings, overrides)
    regions = available_regions()
    loaded, residuals = {}, {}
    for region in regions:
        grid = region.grid()
        loaded[region.name] = Case(region.name, grid, region.reference(grid), HEIGHT)
    per_region, folds, matched = [], [], []
    for ocean, held_out, training in ocean_folds(regions, oceans or OCEANS):
        t0 = time.perf_counter()
        pairs = [(loaded[r.name].grid, loaded[r.name].reference) for r in training]
        model_meta = sm.fit(pairs, f"without {ocean}", skip_untileable=True)
        for r in training:  # each grid's residual relief once per run, whatever the fold
            if r.name not in residuals:
                residuals[r.name] = residual_relief(loaded[r.name].grid, TRADITIONAL_WINDOW_KM)
        evals = [(loaded[r.name].grid, residuals[r.name], loaded[r.name].counts) for r in training]
        m_tr, tune = traditional_choose(evals)
        names = model_meta[1]["combiner"]["names"]
        other, other_names = counterpart(names)
        for region in held_out:
            case = loaded[region.name]
            scores = sm.scores(case.grid, model_meta)
            judged = candidates_from_dataset(scores)
            judged = judged.assign(lon=judged["x"], lat=judged["y"], centre_lon=judged["centre_x"], centre_lat=judged["centre_y"],
                                   **evidence_table(judged))
            strata = height_strata(judged, label(judged, case), region.name)
            matched.append(strata)
            per_region.append({
                "region": region.name, "ocean": ocean, "n_reference": int(len(case.reference)),
                "candidate_recall": candidate_recall(judged, case.reference),
                "matched_height": matched_height(strata),
                "methods": {"seamountae": case.counts(sm.find(case.grid, model_meta)),
                            other: case.counts(sm.find(case.grid, model_meta, other_names)),
                            MAP: case.counts(sm.find(case.grid, model_meta, method="map")),
                            "traditional": case.counts(traditional_detect(case.grid, m_tr, TRADITIONAL_WINDOW_KM))},
            })
            log.info("%-18s %s", region.name, "  ".join(f"{k}: F1 {_f(metrics([v])['f1'])}" for k, v in per_region[-1]["methods"].items()))
            planted = planted_case(case, regions.index(region))
            if planted is not None:
                per_region[-1]["planted"] = {
                    "n_planted": int(len(planted.reference)), "n_confounders": int(len(planted.confounders)),
                    "methods": {"seamountae": planted.counts(sm.find(planted.grid, model_meta)),
                                other: planted.counts(sm.find(planted.grid, model_meta, other_names)),
                                MAP: planted.counts(sm.find(planted.grid, model_meta, method="map")),
                                "traditional": planted.counts(traditional_detect(planted.grid, m_tr, TRADITIONAL_WINDOW_KM))}}
        folds.append({"ocean": ocean, "held_out": [r.name for r in held_out], "trained_on": [r.name for r in training],
                      "traditional_min_residual_m": m_tr, "traditional_selection_f1": tune,
                      "evidence": names, "ablation": other, "threshold": model_meta[1]["threshold"]["value"],
                      "seconds": time.perf_counter() - t0})
        if partial is not None:
            part = {"folds": folds, "regions": per_region, "timings_s": timings,
                    "strata": [m.to_dict(orient="list") for m in matched]}
            write_atomic(partial, to_json(part))
    return finish(folds, per_region, matched, timings)


def planted_case(case: Case, index: int) -> Case | None:
    """The held-out grid with synthetic seamounts planted (synth.plant, one per KM2_PER_PLANTED of
    seafloor, at least 25 km from every reference entry) and as many confounders at their heights
    (ridge segments, fault blocks, landslide debris, 15 km beyond every seamount and entry): recall and the false detections on
    confounders are exact there, at matched height. Detections near a reference entry count neither way."""
    n = max(1, round(valid_area_km2(case.grid) / KM2_PER_PLANTED))
    planted, truth = plant(case.grid, seed=PLANT_SEED + index, n_seamounts=n, avoid=case.reference, avoid_km=25.0)
    if not len(truth):
        return None
    apart = pd.concat([case.reference[["lon", "lat"]].assign(radius_km=0.0), truth[["lon", "lat", "radius_km"]]])
    both, confounders = plant_confounders(planted, truth["height_m"].to_numpy(), seed=PLANT_SEED + index, avoid=apart,
                                          avoid_km=15.0)
    return Case(f"{case.name} planted", both, truth, "height_m", ignore=case.reference, confounders=confounders)


def matched_f1(counted: dict) -> dict:
    """Recall on the planted seamounts, and precision and F1 against the confounders alone (both at
    the same heights), from pooled counts."""
    m = metrics([counted])
    tp, false = m["tp"], m["false_on_confounders"]
    precision = tp / (tp + false) if tp + false else None
    recall = m["recall"]
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if m["n_targets"] else None)
    return {"recall": recall, "precision_vs_confounders": precision, "f1_vs_confounders": f1,
            "false_on_confounders": false, "confounders_hit": m["confounders_hit"], "n_confounders": m["n_confounders"],
            "other_false": m["fp"] - false, "n_targets": m["n_targets"], "matched_targets": m["matched_targets"]}


def finish(folds, per_region, matched, timings) -> dict:
    everywhere = pd.concat(matched, ignore_index=True) if matched else pd.DataFrame()
    gebco = everywhere[~everywhere["stratum"].str.startswith("azores")] if len(everywhere) else everywhere
    return {"folds": folds, "regions": per_region, "pooled": pooled(per_region), "planted": pooled_planted(per_region),
            "timings_s": timings,
            "matched_height": {"all regions": matched_height(everywhere), GEBCO_15S: matched_height(gebco)}}


def merge(paths) -> dict:
    """The full result from the partial results of runs split by ocean."""
    folds, per_region, matched, timings = [], [], [], {}
    for path in paths:
        part = json.loads(Path(path).read_text())
        folds += part["folds"]
        per_region += part["regions"]
        matched += [pd.DataFrame(m) for m in part["strata"]]
        for k, v in part["timings_s"].items():
            timings[k] = timings.get(k, 0.0) + v
    return finish(folds, per_region, matched, timings)


GEBCO_15S = "15″ grids (GEBCO)"


def pooled(per_region: list[dict]) -> dict:
    """P/R/F1 pooled over all regions and over the 15″ grids, per method, with a bootstrap interval
    over regions of F1 and of seamountae's margin over the traditional detector."""
    groups = {"all regions": per_region, GEBCO_15S: [r for r in per_region if not r["region"].startswith("azores")]}
    rng = np.random.default_rng(0)
    out = {}
    for group, rows in groups.items():
        methods = list(rows[0]["methods"]) if rows else []
        out[group] = {}
        draws = [rng.integers(0, len(rows), len(rows)) for _ in range(BOOTSTRAP)]
        f1 = {m: np.array([metrics([rows[i]["methods"][m] for i in d])["f1"] or 0.0 for d in draws]) for m in methods}
        for m in methods:
            value = metrics([r["methods"][m] for r in rows])
            out[group][m] = {**{k: value[k] for k in ("n_found", "tp", "fp", "n_targets", "matched_targets", "precision",
                                                     "recall", "f1", "false_per_10k_km2")},
                             "f1_interval_90": [float(np.quantile(f1[m], 0.05)), float(np.quantile(f1[m], 0.95))]}
            if m != "traditional":
                margin = f1[m] - f1["traditional"]
                out[group][m]["margin_over_traditional_interval_90"] = [float(np.quantile(margin, 0.05)), float(np.quantile(margin, 0.95))]
        cand = [r["candidate_recall"] for r in rows]
        n = sum(c["n_targets"] for c in cand)
        out[group]["candidate_recall"] = sum(c["proposed"] for c in cand) / n if n else None
    return out


def pooled_planted(per_region: list[dict]) -> dict:
    """matched_f1 per method, pooled over the planted held-out grids (all, and the 15″ ones)."""
    out = {}
    for group, rows in (("all regions", per_region), (GEBCO_15S, [r for r in per_region if not r["region"].startswith("azores")])):
        rows = [r["planted"] for r in rows if "planted" in r]
        if rows:
            out[group] = {m: matched_f1(metrics([r["methods"][m] for r in rows])) for m in rows[0]["methods"]}
    return out


def format_planted(out: dict) -> str:
    """Per held-out region and pooled: planted recall, false detections on confounders, F1 against them."""
    regions = [r for r in out["regions"] if "planted" in r]
    if not regions:
        return ""
    methods = list(regions[0]["planted"]["methods"])
    lines = ["| region | planted ≥ 500 m | confounders | " + " | ".join(f"{m} R / false on confounders / F1" for m in methods) + " |",
             "|" + "---|" * (3 + len(methods))]

    def cells(values):
        return " | ".join(f"{_f(v['recall'], '.2f')} / {v['false_on_confounders']} ({v['confounders_hit']} hit) / "
                          f"**{_f(v['f1_vs_confounders'])}**" for v in values)

    for r in regions:
        values = [matched_f1(r["planted"]["methods"][m]) for m in methods]
        lines.append(f"| {r['region']} | {values[0]['n_targets']} | {r['planted']['n_confounders']} | {cells(values)} |")
    for group, res in out["planted"].items():
        values = [res[m] for m in methods]
        lines.append(f"| **pooled: {group}** | {values[0]['n_targets']} | {values[0]['n_confounders']} | {cells(values)} |")
    return "\n".join(lines)


def _f(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def format_full(out: dict) -> str:
    methods = list(out["regions"][0]["methods"]) if out["regions"] else []
    head = "| region | ocean | targets | candidate recall | " + " | ".join(f"{m} P / R / F1" for m in methods) + " |"
    lines = [head, "|" + "---|" * (4 + len(methods))]
    for r in out["regions"]:
        c = r["candidate_recall"]
        cells = []
        for m in methods:
            v = metrics([r["methods"][m]])
            cells.append(f"{_f(v['precision'], '.2f')} / {_f(v['recall'], '.2f')} / **{_f(v['f1'])}**"
                         + (f" ({v['fp']} false)" if not v["n_targets"] else ""))
        lines.append(f"| {r['region']} | {r['ocean']} | {c['n_targets']} | "
                     f"{_f(c['proposed'] / c['n_targets'] if c['n_targets'] else None)} | " + " | ".join(cells) + " |")
    for group, res in out["pooled"].items():
        cells = []
        for m in methods:
            v = res[m]
            lo, hi = v["f1_interval_90"]
            cells.append(f"{_f(v['precision'], '.2f')} / {_f(v['recall'], '.2f')} / **{_f(v['f1'])}** [{lo:.2f}, {hi:.2f}]")
        n = sum(r["candidate_recall"]["n_targets"] for r in out["regions"] if group == "all regions" or not r["region"].startswith("azores"))
        lines.append(f"| **pooled: {group}** | | {n} | {_f(res['candidate_recall'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_matched(out: dict) -> str:
    """The matched-height table: per held-out region and pooled, the error gap and each evidence's AUC."""
    rows = [(r["region"], r["matched_height"]) for r in out["regions"]] + \
           [(f"**pooled: {g}**", v) for g, v in out["matched_height"].items()]
    columns = [c for c in ORIENTATION if any(c in v["auc"] for _, v in rows)]
    lines = ["| region | seamounts | background | error gap | " + " | ".join(f"AUC {c}" for c in columns) + " |",
             "|" + "---|" * (4 + len(columns))]
    for name, v in rows:
        lines.append(f"| {name} | {v['n_seamounts']} | {v['n_background']} | {_f(v['error_gap'], '+.3f')} | "
                     + " | ".join(_f(v["auc"].get(c)) for c in columns) + " |")
    return "\n".join(lines)


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", action="store_true", help="the candidate search alone (no model)")
    p.add_argument("--quick", action="store_true", help="5 training epochs (smoke run)")
    p.add_argument("--readme", action="store_true", help="copy the table into README.md")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
    p.add_argument("--oceans", help="only these held-out oceans (comma-separated), e.g. to split a run over machines")
    p.add_argument("--partial", type=Path, help="write what is done to this file after every fold")
    p.add_argument("--merge", nargs="+", type=Path, help="join the --partial files of runs split by ocean")
    p.add_argument("--train", metavar="KEY=VALUE", action="append", default=[],
                   help="train with this [train] parameter instead of its default (repeatable), e.g. outlier_weight=1; "
                        "the results are then regions_KEY_VALUE.*, beside the default run's")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    t0 = time.perf_counter()
    if args.candidates:
        out = run_candidates()
        table = format_candidates(out)
        name = "regions_candidates"
    else:
        overrides = train_overrides(args.train)
        if args.merge:
            out = merge(args.merge)
        else:
            out = run_full(5 if args.quick else None, args.oceans.split(",") if args.oceans else None, args.partial, overrides)
        table = (format_full(out) + "\n\nAt matched height (candidates within one height quartile of a region's seamounts):\n\n"
                 + format_matched(out) + "\n\nPlanted into the held-out grids, among confounders of the same heights:\n\n"
                 + format_planted(out))
        name = "_".join(["regions", *(f"{k}_{v}" for k, v in overrides.items())] + (["quick"] if args.quick else []))
        out["train_overrides"] = overrides
    out = {**envelope(name, "regions.py", argv, t0), **out}
    write_atomic(RESULTS / f"{name}.json", to_json(out))
    write_atomic(RESULTS / f"{name}.md", table + "\n")
    if args.readme:
        readme_table(name, table)
    print(to_json(out) if args.json else table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
