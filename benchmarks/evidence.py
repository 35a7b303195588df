"""The evidence table: how well each piece of evidence tells seamounts from the rest, on every benchmark grid.

    python benchmarks/evidence.py                # the cases of quality.py (same options), evidence table only
    python benchmarks/quality.py                 # writes it too, beside the quality table

Every candidate summit that `score` judged on a benchmark grid is labelled against the case's
reference: 1 if it is matched (one-to-one, nearest first, within 10 km) to a reference seamount at
least 500 m high, 0 if it lies farther than 15 km from every reference seamount (and, for seamounts
planted in the Azores, from every catalogued one), and left out otherwise. For each evidence the
table gives its AUC over those candidates, oriented so that 0.5 is no information and 1 a perfect
ranking (heights rank high, errors and distances rank low); `score` is the detector's combined evidence and
`score ±AE` its ablation counterpart's (below). The
F1 columns are the detector's and its ablation counterpart's, from quality.py's rows: "±AE" is the
combiner refitted with the autoencoder's evidence added (when the default combines only the
grid's) or removed (when the default includes it).
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from seamountae.evaluation import match_catalogues
from seamountae.evidence import (EVIDENCE, MODEL_EVIDENCE, calibrate, candidates_from_dataset, evidence_table)
from seamountae.geometry import haversine_km

POSITIVE_KM, NEGATIVE_KM, MIN_TARGET_M = 10.0, 15.0, 500.0
# +1: higher means seamount; -1: lower means seamount.
ORIENTATION = {"log_height": 1, "log_steepness": 1, "closure": 1, "elongation": -1, "log_error": -1,
               "error_contrast": -1, "latent_distance": -1, "score": 1, "other_score": 1}
COLUMNS = tuple(ORIENTATION)


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


def table(candidates: list[tuple[str, pd.DataFrame, object]], quality: dict) -> dict:
    """The evidence table of quality.py's run: one row per case (synthetic seeds pooled)."""
    groups: dict[str, list] = {}
    for name, cands, case in candidates:
        cands = case.found(cands)  # the evaluated region, without what counts neither way
        groups.setdefault(name, []).append((cands, label(cands, case)))
    rows = []
    for name, parts in groups.items():
        cands = pd.concat([c for c, _ in parts], ignore_index=True)
        labels = np.concatenate([y for _, y in parts])
        ev = evidence_table(cands)
        ev["score"], ev["other_score"] = cands["score"].to_numpy(), cands["other_score"].to_numpy()
        methods = {r["method"]: r for r in quality["rows"] if r["case"] == name}
        other = next((m for m in (WITH, WITHOUT) if m in methods), None)
        row = {"case": name, "n_candidates": int(len(cands)), "n_seamount": int((labels == 1).sum()),
               "n_background": int((labels == 0).sum()), "other": other}
        for column in COLUMNS:
            row[column] = auc(ORIENTATION[column] * ev[column].to_numpy(float), labels)
        for key, r in (("detector", methods.get("seamountae", {})), ("other", methods.get(other, {}))):
            row[f"{key} P"], row[f"{key} R"], row[f"{key} F1"] = r.get("precision"), r.get("recall"), r.get("f1")
        rows.append(row)
    return {"benchmark": "evidence", "git": quality.get("git"), "machine": quality.get("machine"),
            "positive_km": POSITIVE_KM, "negative_km": NEGATIVE_KM, "min_target_m": MIN_TARGET_M, "rows": rows}


def _fmt(v):
    return "-" if v is None else f"{v:.3f}"


HEAD = ["case", "candidates", "seamount", "background", *[c for c in COLUMNS if c not in ("score", "other_score")],
        "score", "score ±AE", "F1", "F1 ±AE"]


def _cells(r):
    return [r["case"], str(r["n_candidates"]), str(r["n_seamount"]), str(r["n_background"]),
            *[_fmt(r.get(c)) for c in COLUMNS], _fmt(r.get("detector F1")), _fmt(r.get("other F1"))]


def format_markdown(ev: dict) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in ev["rows"]]
    return "\n".join(lines) + "\n"


def format_text(ev: dict) -> str:
    widths = [max(len(h), *(len(_cells(r)[i]) for r in ev["rows"])) if ev["rows"] else len(h) for i, h in enumerate(HEAD)]
    lines = ["AUC of each evidence over the candidate summits (0.5: no information):",
             "  ".join(h.ljust(w) for h, w in zip(HEAD, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(_cells(r), widths)) for r in ev["rows"]]
    return "\n".join(lines)


def main(argv=None) -> int:
    import logging

    import quality

    args, n_seeds = quality.parse(argv, __doc__.split("\n\n")[0])
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    out, runner = quality.run_all(set(args.only) if args.only else set(quality.PARTS), n_seeds, 5 if args.quick else None)
    print(format_text(table(runner.candidates, out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
