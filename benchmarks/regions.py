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

References: the Azores catalogue on the Azores halves, Kim & Wessel ∪ Yesson elsewhere. Recall counts
entries that stand ≥ 500 m in the grid (`grid_relief_m`, measured the same way for every catalogue);
precision is a lower bound (the catalogues are incomplete). Matching: one to one, nearest first,
within 10 km. Candidate recall is the fraction of those entries with a candidate summit within
10 km: what the decision could find at best. Pooled rows sum the counts of the regions before P/R/F1;
the interval is a 90 % bootstrap over regions (resampled with replacement, 1000 times).
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import seamountae
from seamountae.candidates import CandidateRules, search_tiles
from seamountae.geometry import haversine_km

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (MATCH_KM, MIN_TARGET_M, RESULTS, Case, available_regions, git_info,  # noqa: E402
                    to_json, write_atomic)

log = logging.getLogger("regions")
HEIGHT = "grid_relief_m"
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
    if len(candidates):
        d = haversine_km(targets["lon"].to_numpy(float)[:, None], targets["lat"].to_numpy(float)[:, None],
                         candidates["lon"].to_numpy(float)[None], candidates["lat"].to_numpy(float)[None])
        proposed = d.min(1) <= MATCH_KM
    missed = targets[~proposed]
    return {"n_targets": int(len(targets)), "proposed": int(proposed.sum()),
            "unproposed": [[round(float(r["lon"]), 4), round(float(r["lat"]), 4), round(float(r[HEIGHT])), str(r.get("name", ""))]
                           for _, r in missed.iterrows()]}


def search(grid, rules: CandidateRules) -> pd.DataFrame:
    found = list(search_tiles(grid, rules))
    table = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=["x", "y"])
    return table.assign(lon=table["x"], lat=table["y"])


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


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", action="store_true", help="the candidate search alone (no model)")
    p.add_argument("--quick", action="store_true", help="5 training epochs (smoke run)")
    p.add_argument("--readme", action="store_true", help="copy the table into README.md")
    p.add_argument("--json", action="store_true", help="JSON on stdout")
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
        raise SystemExit("full run: not yet")
    out = {"benchmark": name, "seamountae_version": seamountae.__version__, "git": git_info(),
           "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
           "command": " ".join(["python", "benchmarks/regions.py", *(argv if argv is not None else sys.argv[1:])]),
           "runtime_s": time.perf_counter() - t0, **out}
    write_atomic(RESULTS / f"{name}.json", to_json(out))
    write_atomic(RESULTS / f"{name}.md", table + "\n")
    print(to_json(out) if args.json else table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
