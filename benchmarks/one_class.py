"""Is the seamount autoencoder one-class? Its error on held-out seamounts against held-out background
summits of other regions, at matched height, for a sweep of capacities and training variants.

    python benchmarks/one_class.py            # writes benchmarks/results/one_class.json and .md
    python benchmarks/one_class.py --quick    # 5 epochs, one fold (a smoke run)

For each fold, one ocean of the real regions (benchmarks/common.py REGIONS) is held out; the
autoencoder is trained on the seamount patches that `tile` cuts (project defaults) from every other
ocean's regions, and judges the held-out ocean's candidates (the default candidate search), each by
its own-scale patch as `score` does. A candidate is a seamount if it matches a reference entry
standing >= 500 m (within 10 km), background if it lies farther than 15 km from every entry.
Within each height quartile of a region's seamounts (matched height), the error gap is background's
median log error minus seamounts' (positive: seamounts are reconstructed better, the model is
one-class) and the AUC is that of -log error. The issue's target: a gap >= 0.3, an AUC >= 0.75.

Variants (all trained as `train` fits its models: AdamW, one-cycle schedule, the 8 dihedral
transforms, masked MSE on normalised patches; the same epochs and batch size):
- capacity: the bottleneck and width (latent, width) in CAPACITIES;
- denoise: the default size, fed the patch with a random square of a quarter of its area masked to
  0 (the normalised mean) and trained to rebuild the whole clean patch;
- memory: the default size with a MemAE memory (Gong et al. 2019): the code is replaced by an
  attention-weighted sum of MEMORY_SLOTS learnt slots, with hard shrinkage of the weights and their
  entropy penalised, so the decoder can only rebuild from combinations of stored seamount codes;
- outlier exposure (Hendrycks et al. 2019, as a margin on the reconstruction error): the default
  size, trained on the seamount patches as the others and, in the same steps, pushed to rebuild
  the training oceans' background summits (candidates farther than 15 km from every entry, each
  by its own-scale patch, as `score` cuts it) no better than OUTLIER_MARGIN, the error of knowing
  nothing but the patch's plane. "matched height" takes only the background summits within the
  height range of their region's seamounts, the ones height cannot tell apart. Swept: the weight
  (OUTLIER_SWEEP_WEIGHTS) and the margin (OUTLIER_SWEEP_MARGINS);
- edifice-only loss: outlier exposure with the error (in training and judging) taken over the
  patch's central disc (EDIFICE_RADIUS) only, so a gap cannot come from the seafloor around the
  summit.

    python benchmarks/one_class.py --only "outlier"   # re-run some variants; the other rows are kept
    python benchmarks/one_class.py --only weight --only margin --only edifice   # any of several
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from seamountae.candidates import CandidateRules, search_tiles
from seamountae.config import defaults
from seamountae.model import PatchAutoencoder, masked_error
from seamountae.patches import normalise, sample_patches
from seamountae.training import dihedral

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (OCEANS, envelope, RESULTS, Case, auc, available_regions, git_info, height_strata, label,  # noqa: E402
                    matched_height, ocean_folds, tile_many, to_json, write_atomic)

log = logging.getLogger("one_class")
# Two folds keep the run near 40 minutes on 2 cores: the oceans with the most held-out seamounts.
HELD_OUT = ("west pacific", "atlantic")
CAPACITIES = ((2, 8), (4, 8), (16, 16))
MEMORY_SLOTS = 50
SHRINK = 1.0 / MEMORY_SLOTS
ENTROPY_WEIGHT = 2e-4
MASK_FRACTION = 0.5  # of the side: a quarter of the area
OUTLIER_WEIGHT = 1.0
OUTLIER_MARGIN = defaults("train")["outlier_margin"]
# The sweep around outlier exposure's defaults (weight OUTLIER_WEIGHT, margin OUTLIER_MARGIN).
OUTLIER_SWEEP_WEIGHTS = (0.3, 3.0)
OUTLIER_SWEEP_MARGINS = (2.0,)
# The edifice-only loss: the error over the patch's central disc only, this fraction of its width
# in radius (an own-scale patch is 6 basal radii wide, so 0.25 reaches 1.5 basal radii: the
# edifice, not the seafloor around it).
EDIFICE_RADIUS = 0.25


class MemoryAutoencoder(PatchAutoencoder):
    """PatchAutoencoder whose decoder sees only a shrunk attention over learnt memory slots."""

    def __init__(self, patch_px, latent, width, slots=MEMORY_SLOTS):
        super().__init__(patch_px, latent, width)
        self.memory = nn.Parameter(torch.randn(slots, latent) / math.sqrt(latent))
        self.entropy = torch.zeros(())

    def address(self, code):
        weight = torch.softmax(code @ self.memory.T, dim=1)
        # Hard shrinkage (MemAE eq. 7), renormalised: small weights go to zero.
        weight = torch.relu(weight - SHRINK) * weight / ((weight - SHRINK).abs() + 1e-12)
        weight = weight / weight.sum(1, keepdim=True).clamp_min(1e-12)
        self.entropy = -(weight * torch.log(weight + 1e-12)).sum(1).mean()
        return weight @ self.memory

    def forward(self, x):
        return self.decoder(self.address(self.encoder(x)))


def masked_input(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """x with one random square (MASK_FRACTION of the side) per patch set to 0."""
    n, _, p, _ = x.shape
    side = int(round(MASK_FRACTION * p))
    r = torch.randint(0, p - side + 1, (n,), generator=generator)
    c = torch.randint(0, p - side + 1, (n,), generator=generator)
    rows = torch.arange(p)[None, :, None]
    cols = torch.arange(p)[None, None, :]
    hole = (rows >= r[:, None, None]) & (rows < r[:, None, None] + side) & (cols >= c[:, None, None]) & (cols < c[:, None, None] + side)
    return x.masked_fill(hole[:, None], 0.0)


def edifice_disc(patch_px: int) -> torch.Tensor:
    """(1, 1, p, p): 1 within EDIFICE_RADIUS of the patch's width from its centre, else 0."""
    u = (torch.arange(patch_px) - (patch_px - 1) / 2) / patch_px
    return (torch.hypot(u[:, None], u[None, :]) <= EDIFICE_RADIUS).float()[None, None]


def fit(model, x, valid, epochs, seed, denoise=False, negatives=None, weight=OUTLIER_WEIGHT, margin=OUTLIER_MARGIN):
    """Train as `train` does; negatives: (x, valid) of background patches for outlier exposure, pushed
    to an error of at least `margin` with `weight`. An edifice-only loss comes in as `valid`."""
    params = defaults("train")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=params["learning_rate"], weight_decay=1e-4)
    batch = params["batch_size"]
    steps = max(1, epochs * math.ceil(len(x) / batch))
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, params["learning_rate"], total_steps=steps)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            k = int(torch.randint(8, (1,), generator=gen))
            xb, vb = dihedral(x[idx], k), dihedral(valid[idx], k)
            inp = masked_input(xb, gen) if denoise else xb
            loss = masked_error(model(inp), xb, vb).mean()
            if isinstance(model, MemoryAutoencoder):
                loss = loss + ENTROPY_WEIGHT * model.entropy
            if negatives is not None:
                j = torch.randint(len(negatives[0]), (len(idx),), generator=gen)
                nb, nv = dihedral(negatives[0][j], k), dihedral(negatives[1][j], k)
                loss = loss + weight * torch.relu(margin - masked_error(model(nb), nb, nv)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
    return model.eval()


def errors(model, patches: np.ndarray, edifice: bool = False) -> np.ndarray:
    x, valid, _ = normalise(patches)
    x, valid = torch.from_numpy(x)[:, None], torch.from_numpy(valid.astype(np.float32))[:, None]
    if edifice:
        valid = valid * edifice_disc(x.shape[-1])
    with torch.inference_mode():
        return np.concatenate([masked_error(model(x[i : i + 1024]), x[i : i + 1024], valid[i : i + 1024]).numpy()
                               for i in range(0, len(x), 1024)]) if len(x) else np.zeros(0)


def variants(patch_px):
    """name → options: make (the model factory), denoise, outliers (None, "all" or "matched"
    background), weight and margin (of the outlier exposure), edifice (the edifice-only loss)."""
    default = defaults("train")
    out = {f"latent {latent}, width {width}": {"make": lambda lt=latent, w=width: PatchAutoencoder(patch_px, lt, w)}
           for latent, width in CAPACITIES}
    size = (default["latent"], default["width"])
    plain = lambda: PatchAutoencoder(patch_px, *size)  # noqa: E731
    tag = f"(latent {size[0]}, width {size[1]})"
    out[f"denoise {tag}"] = {"make": plain, "denoise": True}
    out[f"memory {MEMORY_SLOTS} slots {tag}"] = {"make": lambda: MemoryAutoencoder(patch_px, *size)}
    out[f"outlier exposure {tag}"] = {"make": plain, "outliers": "all"}
    out[f"outlier exposure, matched height {tag}"] = {"make": plain, "outliers": "matched"}
    for weight in OUTLIER_SWEEP_WEIGHTS:
        out[f"outlier exposure, weight {weight:g} {tag}"] = {"make": plain, "outliers": "all", "weight": weight}
    for margin in OUTLIER_SWEEP_MARGINS:
        out[f"outlier exposure, margin {margin:g} {tag}"] = {"make": plain, "outliers": "all", "margin": margin}
    out[f"outlier exposure, edifice-only loss {tag}"] = {"make": plain, "outliers": "all", "edifice": True}
    out[f"outlier exposure, matched height, edifice-only loss {tag}"] = {"make": plain, "outliers": "matched", "edifice": True}
    return out


def background_patches(found: list, matched: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, valid) of the background summits among labelled candidates, normalised for training;
    matched: only those within their region's seamounts' height range."""
    chosen = []
    for table, labels, own in found:
        keep = labels == 0
        if matched:
            seamounts = table["log_height"].to_numpy()[labels == 1]
            if not seamounts.size:
                continue
            height = table["log_height"].to_numpy()
            keep &= (height >= seamounts.min()) & (height <= seamounts.max())
        chosen.append(own[keep])
    x, valid, _ = normalise(np.concatenate(chosen))
    return torch.from_numpy(x)[:, None], torch.from_numpy(valid.astype(np.float32))[:, None]


def labelled_candidates(region, rules, patch_km, patch_px):
    """The region's candidates with their labels, log height and own-scale patch."""
    grid = region.grid()
    case = Case(region.name, grid, region.reference(grid), "grid_relief_m")
    parts = list(search_tiles(grid, rules))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if not len(table):
        return None
    table = table.assign(lon=table["x"], lat=table["y"], log_height=np.log(table["height_m"].to_numpy(float)))
    labels = label(table, case)
    keep = labels >= 0
    table, labels = table[keep].reset_index(drop=True), labels[keep]
    own = sample_patches(grid, table["x"].to_numpy(float), table["y"].to_numpy(float), patch_km, patch_px,
                         table["window_km"].to_numpy(float) / patch_km)
    return table, labels, own


def run(epochs: int, folds, only: list[str] | None = None) -> dict:
    regions = available_regions()
    tile_params = defaults("tile")
    rules = CandidateRules()
    patch_km, patch_px = float(tile_params["patch_km"]), int(tile_params["patch_px"])
    rows = []
    for ocean, held, training in ocean_folds(regions, folds):
        pairs = []
        for r in training:
            grid = r.grid()
            pairs.append((grid, Case(r.name, grid, r.reference(grid), "grid_relief_m").reference))
        patches = tile_many(pairs, skip_untileable=True)
        x, valid, _ = normalise(patches["patch"].values)
        x, valid = torch.from_numpy(x)[:, None], torch.from_numpy(valid.astype(np.float32))[:, None]
        evaluated = [found for found in (labelled_candidates(r, rules, patch_km, patch_px) for r in held) if found]
        log.info("held out %s: %d training patches (%d seamounts); %d held-out candidates", ocean, len(x),
                 len(np.unique(patches["seamount"].values)), sum(len(t) for t, _, _ in evaluated))
        chosen = {name: v for name, v in variants(patch_px).items() if not only or any(text in name for text in only)}
        training_found = None
        for name, options in chosen.items():
            t0 = time.perf_counter()
            negatives, outliers, edifice = None, options.get("outliers"), options.get("edifice", False)
            if outliers:
                if training_found is None:
                    training_found = [f for f in (labelled_candidates(r, rules, patch_km, patch_px) for r in training) if f]
                negatives = background_patches(training_found, matched=outliers == "matched")
                log.info("%s: %d background patches from the training oceans", name, len(negatives[0]))
            disc = edifice_disc(patch_px) if edifice else 1.0
            if negatives is not None:
                negatives = (negatives[0], negatives[1] * disc)
            model = fit(options["make"](), x, valid * disc, epochs, seed=0, denoise=options.get("denoise", False),
                        negatives=negatives, weight=options.get("weight", OUTLIER_WEIGHT),
                        margin=options.get("margin", OUTLIER_MARGIN))
            strata, all_errors, all_labels = [], [], []
            for (table, labels, own), region in zip(evaluated, held):
                table = table.assign(log_error=np.log(errors(model, own, edifice)))
                strata.append(height_strata(table, labels, region.name))
                all_errors.append(table["log_error"].to_numpy())
                all_labels.append(labels)
            matched = matched_height(pd.concat(strata, ignore_index=True))
            rows.append({"held_out": ocean, "variant": name, "n_patches": int(len(x)),
                         "train_loss": float(errors(model, patches["patch"].values, edifice).mean()),
                         "error_gap": matched["error_gap"], "auc_matched": matched["auc"].get("log_error"),
                         "auc_all": auc(-np.concatenate(all_errors), np.concatenate(all_labels)),
                         "n_seamounts": matched["n_seamounts"], "n_background": matched["n_background"],
                         "n_outliers": 0 if negatives is None else int(len(negatives[0])),
                         "seconds": time.perf_counter() - t0, "git": git_info()})
            log.info("%-14s %-40s gap %s, AUC matched %s, all %s (%.0f s)", ocean, name, _f(rows[-1]["error_gap"], "+.3f"),
                     _f(rows[-1]["auc_matched"]), _f(rows[-1]["auc_all"]), rows[-1]["seconds"])
    return {"epochs": epochs, "rows": rows}


def _f(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def format_table(out: dict) -> str:
    lines = ["| held out | variant | train loss | seamounts / background | error gap | AUC matched | AUC all |",
             "|---|---|---|---|---|---|---|"]
    for r in out["rows"]:
        lines.append(f"| {r['held_out']} | {r['variant']} | {r['train_loss']:.3f} | {r['n_seamounts']} / {r['n_background']} | "
                     f"{_f(r['error_gap'], '+.3f')} | {_f(r['auc_matched'])} | {_f(r['auc_all'])} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="5 epochs, the first fold only (smoke run)")
    p.add_argument("--only", metavar="TEXT", action="append",
                   help="run only the variants whose name holds TEXT (repeatable: any of them), keeping the other rows of the last run")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    assert set(HELD_OUT) <= set(OCEANS), OCEANS
    t0 = time.perf_counter()
    out = run(5, HELD_OUT[:1], args.only) if args.quick else run(defaults("train")["epochs"], HELD_OUT, args.only)
    name = "one_class_quick" if args.quick else "one_class"
    if args.only and (RESULTS / f"{name}.json").exists():
        # Each row carries its own commit, so a table joined from several runs says what ran where.
        fresh = {(r["held_out"], r["variant"]) for r in out["rows"]}
        kept = [r for r in json.loads((RESULTS / f"{name}.json").read_text())["rows"] if (r["held_out"], r["variant"]) not in fresh]
        out["rows"] = sorted(kept + out["rows"], key=lambda r: (HELD_OUT.index(r["held_out"]), list(variants(1)).index(r["variant"])))
    table = format_table(out)
    out = {**envelope(name, "one_class.py", argv, t0), **out}
    write_atomic(RESULTS / f"{name}.json", to_json(out))
    write_atomic(RESULTS / f"{name}.md", table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
