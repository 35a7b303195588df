"""The evidence table: how well each piece of evidence tells seamounts from the rest, on every benchmark grid.

    python benchmarks/quality.py                 # writes it beside the quality table

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

import numpy as np
import pandas as pd

from seamountae.evidence import evidence_table

from common import MIN_TARGET_M, NEGATIVE_KM, ORIENTATION, POSITIVE_KM, WITH, WITHOUT, auc, label

COLUMNS = tuple(ORIENTATION)


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
