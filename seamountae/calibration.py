"""Calibration: what turns evidence into a score users can read, fitted on held-out judgements.

- `Combiner`: a logistic combination of the evidence, fitted by training (training.py) to the
  training grids' candidates, each judged by a model that did not learn it (cross-fitting): the
  catalogued seamounts (positives) against summits far from any catalogued seamount (background).
  Its score is the fraction of training candidates with such evidence that were catalogued seamounts.
- `best_f1_threshold`: the threshold `auto`, the score with the best F1 on those candidates.
- `conformal_score`: the map's score, an error's conformal p-value among the held-out errors of the
  training seamounts' own patches.

Layer 4, judgement: imports layers 1-4 only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .config import EVIDENCE

# The float64 numbers a model file stores from BLAS/LAPACK arithmetic (the latent memory, the
# combiner, the calibration evidence) are kept to this many significant digits: the kernel a
# machine's BLAS picks, and its thread count, change their last bits, never the tenth digit.
STORED_DIGITS = 10


def stored(values):
    """`values` (a number or an array) rounded to STORED_DIGITS significant digits, as the model file
    keeps them; whatever is computed from them at training uses these, so training and a reloaded
    model agree."""
    array = np.asarray(values, np.float64)
    rounded = np.array([float(f"{v:.{STORED_DIGITS}g}") for v in array.ravel()]).reshape(array.shape)
    return float(rounded) if array.ndim == 0 else rounded



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
        combiner.mean, combiner.scale = stored(mean), stored(scale)
        combiner.coef, combiner.intercept = stored(w[:-1]), stored(w[-1])
        return combiner

    def score(self, evidence: pd.DataFrame) -> np.ndarray:
        # A plain sum, not a BLAS product: the same bits whatever the BLAS, so the threshold chosen
        # from these scores at training is the one a reloaded model's scores are compared with.
        logit = (self._design(evidence) * self.coef).sum(axis=1) + self.intercept
        return 1 / (1 + np.exp(-np.clip(logit, -30, 30)))

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
            best = {"threshold": stored(cut), "f1": f1, "precision": tp / max(tp + fp, 1), "recall": tp / max(n_pos, 1)}
    return best


def conformal_score(errors: np.ndarray, calibration_errors) -> np.ndarray:
    """Seamount-likeness on [0, 1]: (1 + #held-out errors ≥ e) / (n + 1), NaN stays NaN.

    A real seamount's score is uniform on [0, 1], so score ≥ α keeps a fraction 1 − α of them.
    """
    ref = np.sort(np.asarray(calibration_errors, np.float64))
    e = np.asarray(errors, np.float64)
    count_ge = len(ref) - np.searchsorted(ref, e, side="left")
    score = (1.0 + count_ge) / (len(ref) + 1.0)
    return np.where(np.isfinite(e), score, np.nan).astype(np.float32)
