"""Shape classes: are they stable across training seeds, and do they differ in form?

    python benchmarks/shapes.py                           # writes benchmarks/results/shapes.json, .md and .png
    python benchmarks/shapes.py --patches build/builtin/*.nc  # the built-in model's training patches (make builtin-model)
    python benchmarks/shapes.py --quick                   # 5 epochs (a smoke run; numbers not comparable)

The model is trained (train at the project's defaults) twice, with seeds 0 and 1, on the given patch
files, or else on the catalogued seamounts of every real region the project holds (tile at the
defaults; benchmarks/common.py REGIONS). Each model
groups its training seamounts into `[train] shape_classes` classes (shapes.py). Measured:
- stability: the adjusted Rand index between the two models' classes of the same training
  seamounts (each seamount's own-scale patch encoded by each model and given its nearest class);
- form: for every pair of classes of the seed-0 model, whether the members' median height, basal
  radius or elongation differ by more than a quarter of the larger of the two classes' interquartile
  ranges; and the silhouette of the classes in the standardised latent space;
- a picture: each class's mean reconstruction (the decoder's output for its members' codes,
  averaged), beside its morphometric medians.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from seamountae.evidence import encode
from seamountae.outputs import read_netcdf
from seamountae.shapes import DESCRIBED, ShapeClasses, adjusted_rand_index
from seamountae.tile import concat_patches

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, envelope, Case, Seamountae, available_regions, tile_many, to_json, write_atomic  # noqa: E402

log = logging.getLogger("shapes")
SEEDS = (0, 1)
COMPARED = ("height_m", "basal_radius_km", "elongation")


def class_labels(model, meta, patches) -> np.ndarray:
    """Each training seamount's class by this model (its own-scale patch, as score encodes it)."""
    own = patches["candidate_patch"].values[patches["candidate_label"].values == 1][:, 0]
    return ShapeClasses.from_meta(meta["shape_classes"]).assign(encode(model, own)[1])[0]


def differ(described: list[dict]) -> list[dict]:
    """Every pair of classes: which of COMPARED differ by more than a quarter of the larger IQR."""
    out = []
    for a, b in itertools.combinations(described, 2):
        apart = [name for name in COMPARED
                 if None not in (a[f"median_{name}"], b[f"median_{name}"], a[f"iqr_{name}"], b[f"iqr_{name}"])
                 and abs(a[f"median_{name}"] - b[f"median_{name}"]) > 0.25 * max(a[f"iqr_{name}"], b[f"iqr_{name}"])]
        out.append({"classes": [a["class"], b["class"]], "differ_in": apart})
    return out


def mean_reconstructions(model, meta, patches) -> np.ndarray:
    """(k, p, p): the decoder's output for each class's members' codes, averaged."""
    own = patches["candidate_patch"].values[patches["candidate_label"].values == 1][:, 0]
    codes = encode(model, own)[1]
    labels = ShapeClasses.from_meta(meta["shape_classes"]).assign(codes)[0]
    with torch.inference_mode():
        decoded = model.decoder(torch.as_tensor(codes)).numpy()[:, 0]
    return np.stack([decoded[labels == j + 1].mean(0) for j in range(labels.max())])


def picture(images: np.ndarray, described: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(images), figsize=(2.6 * len(images), 3.2))
    for ax, image, c in zip(np.atleast_1d(axes), images, described):
        ax.imshow(image, cmap="terrain", origin="lower")
        ax.set_title(f"class {c['class']} (n={c['n']})\n{c['median_height_m']:.0f} m, r {c['median_basal_radius_km']:.1f} km\n"
                     f"closure {c['median_closure']:.2f}, elong. {c['median_elongation']:.2f}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Shape classes: each class's mean reconstruction (own-scale patch, normalised)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def training_patches(paths):
    """The patch files given, concatenated, or every region tiled: (patches, what they are)."""
    if paths:
        return concat_patches([read_netcdf(p, "patches", "tile") for p in paths]), [str(p) for p in paths]
    regions = available_regions()
    pairs = []
    for region in regions:
        grid = region.grid()
        pairs.append((grid, Case(region.name, grid, region.reference(grid), "grid_relief_m").reference))
    return tile_many(pairs, skip_untileable=True), [r.name for r in regions]


def run(epochs: int | None, paths) -> tuple[dict, dict, np.ndarray]:
    patches, trained_on = training_patches(paths)
    timings: dict = {}
    sm = Seamountae(epochs, timings)
    models = {seed: sm.fit_patches(patches, f"seed {seed}", seed=seed) for seed in SEEDS}
    labels = {seed: class_labels(*models[seed], patches) for seed in SEEDS}
    described = models[SEEDS[0]][1]["shape_classes"]["classes"]
    pairs_apart = differ(described)
    out = {
        "trained_on": trained_on,
        "n_seamounts": int((patches["candidate_label"].values == 1).sum()),
        "k": len(described),
        "adjusted_rand_index": adjusted_rand_index(labels[SEEDS[0]], labels[SEEDS[1]]),
        "silhouette": {str(s): models[s][1]["shape_classes"]["silhouette"] for s in SEEDS},
        "classes": {str(s): models[s][1]["shape_classes"]["classes"] for s in SEEDS},
        "pairs": pairs_apart,
        "pairs_differing": sum(bool(p["differ_in"]) for p in pairs_apart),
        "timings_s": timings,
    }
    return out, models[SEEDS[0]], mean_reconstructions(*models[SEEDS[0]], patches)


def format_table(out: dict) -> str:
    lines = [f"Adjusted Rand index between seeds {SEEDS[0]} and {SEEDS[1]}: **{out['adjusted_rand_index']:.3f}** "
             f"({out['n_seamounts']} training seamounts, k = {out['k']}); silhouette "
             + ", ".join(f"seed {s}: {v:.3f}" for s, v in out["silhouette"].items())
             + f"; class pairs differing by more than a quarter IQR in height, radius or elongation: "
             f"{out['pairs_differing']} of {len(out['pairs'])}.", "",
             "| class (seed 0) | seamounts | " + " | ".join(f"median {n} (IQR)" for n in DESCRIBED) + " |",
             "|" + "---|" * (2 + len(DESCRIBED))]
    for c in out["classes"][str(SEEDS[0])]:
        lines.append(f"| {c['class']} | {c['n']} | " + " | ".join(
            f"{c[f'median_{n}']:.3g} ({c[f'iqr_{n}']:.3g})" if c[f"median_{n}"] is not None else "-" for n in DESCRIBED) + " |")
    lines += ["", "| pair | differ in |", "|---|---|"]
    lines += [f"| {a}–{b} | {', '.join(p['differ_in']) or 'none'} |" for p in out["pairs"] for a, b in [p["classes"]]]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="5 training epochs (smoke run)")
    p.add_argument("--patches", nargs="+", type=Path, help="patch files to train on (default: every region, tiled)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    t0 = time.perf_counter()
    out, _, images = run(5 if args.quick else None, args.patches)
    name = "shapes_quick" if args.quick else "shapes"
    table = format_table(out)
    out = {**envelope(name, "shapes.py", argv, t0), **out}
    write_atomic(RESULTS / f"{name}.json", to_json(out))
    write_atomic(RESULTS / f"{name}.md", table + "\n")
    picture(images, out["classes"][str(SEEDS[0])], RESULTS / f"{name}.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
