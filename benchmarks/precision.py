"""Detection at each forward-pass precision: the same model, the same grid, fp32 against bf16 and fp16.

    python benchmarks/precision.py            # writes benchmarks/results/precision.json (~5 min on 2 CPU cores)
    python benchmarks/precision.py --quick    # 5 epochs

The Azores split of benchmarks/quality.py (train on the catalogue west of 28°W, evaluate east of
it; and the mirror image), with the project's default parameters. One model per split scores the
whole grid at every precision the device runs; each score is detected and evaluated as the
quality benchmark does, with the default evidence and with the autoencoder's evidence added (the
combiner refitted on the calibration candidates). Per precision: F1 (recall over catalogue
entries ≥ 500 m, 10 km matching), whether the catalogue equals fp32's (the same summits), the
largest difference of the candidates' seamount score and of the map's error and score, and the
seconds of `score` (a rough figure: benchmarks/score_speed.py measures speed).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from seamountae.config import PRECISIONS
from seamountae.detection import detect
from seamountae.config import EVIDENCE, MODEL_EVIDENCE
from seamountae.scoring import score

log = logging.getLogger("precision")


def run(epochs: int | None) -> list[dict]:
    data = common.azores_data()
    if data is None:
        raise SystemExit(f"precision: {common.SHARED.resolve()}/azores not found (see ../shared/data/README.md)")
    grid, catalogue = data
    sm = common.Seamountae(epochs, {})
    params = common.stage_params("score", score)
    rows = []
    for train_side, eval_side in (("west", "east"), ("east", "west")):
        model, meta = sm.fit([(grid, common.side(catalogue, train_side))], f"Azores {train_side}")
        case = common.Case(f"azores {train_side[0].upper()}→{eval_side[0].upper()}", grid,
                            common.side(catalogue, eval_side), "grid_relief_m", eval_side)
        with_model = [n for n in EVIDENCE if n in meta["combiner"]["names"] or n in MODEL_EVIDENCE]
        reference = None
        for precision in PRECISIONS:
            if precision not in meta["calibration"]["errors"]:
                log.warning("%s: the model has no %s calibration on this device; skipped", case.name, precision)
                continue
            start = time.perf_counter()
            scores = score(grid, model, meta, **{**params, "precision": precision})
            seconds = time.perf_counter() - start
            judged = {"default": scores, "+ autoencoder evidence": common.rescored(scores, meta, with_model)}
            found = {label: detect(ds)[0] for label, ds in judged.items()}
            if reference is None:
                reference = (scores, found, judged)
            row = {"case": case.name, "precision": precision, "score_seconds": round(seconds, 1),
                   "n_candidates": int(scores.sizes["candidate"])}
            for label, table in found.items():
                m = common.metrics([case.counts(table)])
                same = np.array_equal(table[["x", "y"]].to_numpy(float), reference[1][label][["x", "y"]].to_numpy(float))
                row[label] = {"f1": m["f1"], "precision": m["precision"], "recall": m["recall"],
                              "n_found": m["n_found"], "same_catalogue_as_fp32": bool(same),
                              "candidate_score_max_abs_diff": float(np.nanmax(np.abs(
                                  judged[label]["candidate_score"].values - reference[2][label]["candidate_score"].values),
                                  initial=0.0))}
            for name in ("error", "score"):
                diff = np.abs(scores[name].values - reference[0][name].values)
                row[f"map_{name}_max_abs_diff"] = float(np.nanmax(diff, initial=0.0))
            log.info("%s", json.dumps(row))
            rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 epochs")
    parser.add_argument("--output", default=str(common.RESULTS / "precision.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    rows = run(5 if args.quick else None)
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "git": common.git_info(), "rows": rows}
    common.write_atomic(Path(args.output), json.dumps(out, indent=1) + "\n")
    for r in rows:
        d, ae = r["default"], r["+ autoencoder evidence"]
        print(f"{r['case']:12s} {r['precision']:5s} F1 {d['f1']:.3f} (same catalogue as fp32: {d['same_catalogue_as_fp32']}, "
              f"max |Δ score| {d['candidate_score_max_abs_diff']:.2g}); + AE evidence F1 {ae['f1']:.3f} (same: "
              f"{ae['same_catalogue_as_fp32']}, max |Δ score| {ae['candidate_score_max_abs_diff']:.2g}); map: max |Δ| "
              f"error {r['map_error_max_abs_diff']:.2g}, score {r['map_score_max_abs_diff']:.2g}; score {r['score_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
