"""Shape classes: the training seamounts' latent codes grouped into a few kinds of edifice.

The autoencoder's code of a seamount's own-scale patch describes its form (the patch is normalised,
so not its height in metres). `ShapeClasses.fit` standardises the training seamounts' codes (per
latent dimension) and groups them by k-means (k-means++ starts, the best of `RESTARTS` by inertia,
seeded): each class is a centroid, numbered 1..k by its members' median height so that class 1 is
the lowest kind. Every candidate then gets the nearest class (`shape_class`) and its distance from
that centroid (`shape_distance`, in standardised latent units); `similar` ranks seamounts by the
distance between their standardised codes. The model file stores the centroids rounded as its
other calibration (calibration.stored), with the members' morphometrics per class.

`adjusted_rand_index` measures how far two labellings of the same seamounts agree (1: the same
partition, 0: as by chance), for the stability of the classes across training seeds.

Layer 4, judgement: imports layers 1-4 only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .calibration import stored
from .errors import SeamountaeError

RESTARTS = 10
ITERATIONS = 100
# The class of a candidate the model has no classes for (a model trained before shape classes).
NO_CLASS = 0
# The members' morphometrics each class is described by (candidate columns).
DESCRIBED = ("height_m", "basal_radius_km", "closure", "elongation")


class ShapeClasses:
    """Centroids of standardised latent codes; `mean`, `scale` standardise a code."""

    def __init__(self, mean, scale, centroids, described: list[dict] | None = None, silhouette: float | None = None):
        self.mean, self.scale = np.asarray(mean, np.float64), np.asarray(scale, np.float64)
        self.centroids = np.asarray(centroids, np.float64).reshape(-1, self.mean.size)
        self.described = described or []
        self.silhouette = silhouette

    @property
    def k(self) -> int:
        return len(self.centroids)

    def standardise(self, codes: np.ndarray) -> np.ndarray:
        return (np.asarray(codes, np.float64) - self.mean) / self.scale

    def assign(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class 1..k, distance to its centroid) of each code."""
        z = self.standardise(codes).reshape(-1, self.mean.size)
        d = np.sqrt(((z[:, None, :] - self.centroids[None]) ** 2).sum(-1))
        nearest = d.argmin(1) if len(z) else np.zeros(0, int)
        return nearest + 1, d[np.arange(len(z)), nearest] if len(z) else np.zeros(0)

    @classmethod
    def fit(cls, codes: np.ndarray, k: int, seed: int, morphometrics: dict[str, np.ndarray]) -> "ShapeClasses | None":
        """k classes of `codes` (n, latent); None when there are fewer than 2 seamounts or k < 2.
        `morphometrics`: DESCRIBED columns of the same seamounts, to order and describe the classes."""
        codes = np.asarray(codes, np.float64)
        k = min(int(k), len(codes))
        if k < 2:
            return None
        mean = stored(codes.mean(0))
        scale = stored(np.maximum(codes.std(0), 1e-6))
        z = (codes - mean) / scale
        centroids, labels = kmeans(z, k, seed)
        order = np.argsort([np.nanmedian(morphometrics["height_m"][labels == j]) for j in range(k)], kind="stable")
        centroids = stored(centroids[order])
        classes = cls(mean, scale, centroids)
        labels = classes.assign(codes)[0]
        classes.described = [{"class": j + 1, "n": int((labels == j + 1).sum()),
                              **{f"median_{name}": _median(values[labels == j + 1]) for name, values in morphometrics.items()},
                              **{f"iqr_{name}": _iqr(values[labels == j + 1]) for name, values in morphometrics.items()}}
                             for j in range(k)]
        classes.silhouette = float(stored(silhouette(classes.standardise(codes), labels)))
        return classes

    def as_meta(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "centroids": self.centroids.tolist(),
                "classes": self.described, "silhouette": self.silhouette,
                "rule": f"k-means of the training seamounts' standardised latent codes ({RESTARTS} k-means++ starts); "
                        "classes numbered by their members' median height"}

    @classmethod
    def from_meta(cls, meta: dict | None) -> "ShapeClasses | None":
        if not meta:
            return None
        return cls(meta["mean"], meta["scale"], meta["centroids"], meta.get("classes"), meta.get("silhouette"))


def _median(values) -> float | None:
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return float(stored(np.median(values))) if values.size else None


def _iqr(values) -> float | None:
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return float(stored(np.subtract(*np.percentile(values, [75, 25])))) if values.size else None


def kmeans(z: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means, the best of RESTARTS k-means++ starts by inertia: (centroids, labels)."""
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(RESTARTS):
        centroids = z[[rng.integers(len(z))]]
        while len(centroids) < k:  # k-means++: each next start drawn by squared distance
            d2 = ((z[:, None] - centroids[None]) ** 2).sum(-1).min(1)
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(z), 1 / len(z))
            centroids = np.vstack([centroids, z[rng.choice(len(z), p=p)]])
        for _ in range(ITERATIONS):
            labels = ((z[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
            moved = np.array([z[labels == j].mean(0) if (labels == j).any() else centroids[j] for j in range(k)])
            if np.allclose(moved, centroids):
                break
            centroids = moved
        inertia = ((z - centroids[labels]) ** 2).sum()
        if best is None or inertia < best[0]:
            best = (inertia, centroids, labels)
    return best[1], best[2]


def silhouette(z: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of a labelling (Rousseeuw 1987): 1 tight, separate classes; near 0 overlapping."""
    d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))
    values = []
    for i, own in enumerate(labels):
        mine = (labels == own) & (np.arange(len(z)) != i)
        if not mine.any():
            values.append(0.0)
            continue
        a = d[i, mine].mean()
        b = min(d[i, labels == other].mean() for other in np.unique(labels) if other != own)
        values.append((b - a) / max(a, b) if max(a, b) > 0 else 0.0)
    return float(np.mean(values)) if values else float("nan")


def adjusted_rand_index(a, b) -> float:
    """The adjusted Rand index of two labellings of the same items (Hubert & Arabie 1985)."""
    a, b = np.unique(np.asarray(a), return_inverse=True)[1], np.unique(np.asarray(b), return_inverse=True)[1]
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)

    def pairs(n):
        return (n * (n - 1) / 2).sum()

    index, rows, cols, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), pairs(np.array([len(a)]))
    expected = rows * cols / total if total else 0.0
    top = (rows + cols) / 2 - expected
    return float((index - expected) / top) if top else 1.0


def code_columns(latent: int | list) -> list[str]:
    """The shape code's column names: for a latent size, or those among a list of names."""
    if isinstance(latent, int):
        return [f"shape_code_{i + 1}" for i in range(latent)]
    return sorted((n for n in latent if str(n).startswith("shape_code_")), key=lambda n: int(n.rsplit("_", 1)[1]))


def similar(table: pd.DataFrame, seamount_id, name: str = "catalogue") -> pd.DataFrame:
    """The catalogue's other seamounts, nearest in shape to seamount `seamount_id` first: their
    id, position, height, shape class and `shape_distance_to` (between standardised codes)."""
    codes = code_columns(list(table.columns))
    if not codes:
        raise SeamountaeError(f"{name}: no shape codes (shape_code_1, ...); find or export it again with this "
                              "seamountae and a model that has shape classes (the built-in one has)")
    if "id" not in table.columns:
        raise SeamountaeError(f"{name}: no id column; give a catalogue written by seamountae export or find")
    ids = table["id"].astype(str).to_numpy()
    chosen = np.flatnonzero(ids == str(seamount_id))
    if not chosen.size:
        raise SeamountaeError(f"{name}: no seamount with id {seamount_id}; ids run from {ids[0]} to {ids[-1]}"
                              if len(ids) else f"{name}: no seamounts in it")
    z = table[codes].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    distance = np.sqrt(((z - z[chosen[0]]) ** 2).sum(1))
    shown = [c for c in ("id", "lon", "lat", "height_m", "basal_radius_km", "shape_class") if c in table.columns]
    out = table[shown].assign(shape_distance_to=distance)
    out = out[(ids != str(seamount_id)) & np.isfinite(distance)]
    return out.sort_values("shape_distance_to", kind="stable").reset_index(drop=True)
