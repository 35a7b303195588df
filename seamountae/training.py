"""Training the autoencoder on seamount patches, and calibrating its evidence by cross-fitting.

Calibration is what gives a score meaning. The training seamounts are split into folds; a model
trained without one fold judges that fold's candidates, so every catalogued seamount of the training
grid is judged as an unseen seamount would be, and so is the grid's background. The combination
of evidence (calibration.Combiner) and the threshold `auto` are fitted to those judgements; the
model saved is then trained on every seamount. Judging the training seamounts with the model that
learnt them would be optimistic and set the threshold where unseen seamounts are lost.

Under torchrun (several processes, see `distributed`), training is data-parallel and otherwise the
same run: every process draws the same shuffled order and augmentation from the same seeded
generator, takes its share of each batch of `batch_size`, and DistributedDataParallel averages the
gradients. The batches, the number of steps and the learning-rate schedule are those of one
process, so N processes fit the model one process would, up to the order of floating-point sums.

Layer 5, stages: imports layers 1-5 only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import xarray as xr

from . import __version__, config, distributed
from .calibration import calibrate, stored
from . import terrain
from .candidates import BACKGROUND_KM
from .config import EVIDENCE, MODEL_EVIDENCE, default
from .errors import SeamountaeError
from .evidence import MODEL_COLUMNS, LatentMemory, encode, evidence_table, model_evidence
from .model import PatchAutoencoder, masked_error, resolve_device
from .outputs import atomic_output
from .patches import normalise
from .progress import progress_bar
from .runner import PatchScorer
from .shapes import DESCRIBED, ShapeClasses

log = logging.getLogger("seamountae")

NORMALISATION = "plane-removed, std-scaled"


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 rotations/reflections of a batch of patches (seamounts have no up or east)."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x


def reconstruction_errors(model: torch.nn.Module, x: torch.Tensor, valid: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb, vb = x[i : i + batch_size].to(device), valid[i : i + batch_size].to(device)
            out.append(masked_error(model(xb), xb, vb).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


CHECKPOINT_FORMAT = "seamountae-checkpoint"


def checkpoint_path(model_path) -> Path:
    """Where training towards MODEL.pt keeps its checkpoint: MODEL.pt.ckpt, beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".ckpt")


def fingerprint(patches: xr.Dataset, **params) -> dict:
    """What a checkpoint must have been made from for a resumed run to equal an uninterrupted one."""
    digest = hashlib.sha256()
    for name in ("patch", "seamount"):
        digest.update(np.ascontiguousarray(patches[name].values).tobytes())
    keys = ("epochs", "seed", "latent", "width", "batch_size", "learning_rate", "folds", "outlier_weight",
            "outlier_margin")
    return {"patches_sha256": digest.hexdigest(), **{k: params[k] for k in keys}}


def read_checkpoint(path) -> dict:
    """Load a checkpoint without executing code in it; SeamountaeError if it is not one."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            content = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
            raise ValueError
    except FileNotFoundError:
        raise SeamountaeError(f"{path}: no such checkpoint; train without --resume") from None
    except Exception:
        raise SeamountaeError(f"{path}: not a usable seamountae checkpoint (damaged or another file); "
                              "delete it and train without --resume") from None
    return content


def checkpoint_mismatch(content: dict, expected: dict) -> str | None:
    """Why a checkpoint cannot continue the run described by `expected` (None if it can)."""
    made = content.get("fingerprint", {})
    for key, value in expected.items():
        if made.get(key) != value:
            if key == "patches_sha256":
                return "it was made from other patches"
            return f"it was made with {key} = {made.get(key)!r}, not {value!r}"
    return None


def _save_checkpoint(path, state: dict) -> None:
    with atomic_output(path, overwrite=True) as tmp:
        with open(tmp, "wb") as handle:  # through a handle: the archive's inner name is fixed
            torch.save(state, handle)


def train(
    patches: xr.Dataset,
    epochs: int = default("train", "epochs"),
    seed: int = default("train", "seed"),
    device: str = default("train", "device"),
    latent: int = default("train", "latent"),
    width: int = default("train", "width"),
    batch_size: int = default("train", "batch_size"),
    learning_rate: float = default("train", "learning_rate"),
    folds: int = default("train", "folds"),
    evidence: tuple[str, ...] = default("train", "evidence"),
    shape_classes: int = default("train", "shape_classes"),
    outlier_weight: float = default("train", "outlier_weight"),
    outlier_margin: float = default("train", "outlier_margin"),
    progress: bool = True,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[PatchAutoencoder, dict]:
    """Fit the autoencoder to the seamount patches and calibrate its evidence; return it with the
    metadata its model file carries.

    Calibration is cross-fitted: the training seamounts are split into `folds`; for each fold a
    model is trained without it and judges that fold's candidates (and a share of the background
    candidates), so every training-grid candidate is judged by a model that never learnt it. The
    combiner (calibration.Combiner) is fitted to those judgements, and the threshold `auto` is the one
    with the best F1 on them. The model returned is then trained on every seamount. Each of the
    folds + 1 runs has `epochs` epochs.

    outlier_weight > 0: outlier exposure. Each step also rebuilds as many of the training grid's
    background candidates (own-scale patches, farther than BACKGROUND_KM from any catalogued
    seamount) and adds outlier_weight × max(0, outlier_margin − their error) to the loss, so the model
    learns to rebuild seamounts and not the rest of the seafloor. A normalised patch has unit
    variance about its plane, so an error of 1 is what rebuilding it as flat seafloor costs. A fold's model never sees the
    background candidates that fold judges.

    checkpoint: a file rewritten (atomically) after every epoch with everything training needs to
    go on: the run and epoch, weights, optimiser, schedule, random states, loss history and the
    judgements of the folds done (tensors and plain types only, loadable with weights_only=True).
    With resume=True, training continues from it (a missing checkpoint starts afresh, one made with
    other patches or parameters is refused), and the result equals an uninterrupted run's. The
    caller deletes it once the model is saved. on_epoch(epoch, loss) is called after each epoch
    (and its checkpoint), epochs counted over all runs.

    Started by torchrun with several processes, it trains data-parallel (see the module notes):
    every process returns the same model and metadata, only rank 0 writes the checkpoint, and the
    process group is torn down on return.
    """
    if patches.attrs.get("seamountae_kind") != "patches" or "candidate_label" not in patches:
        raise SeamountaeError("patches file: not written by this version of `seamountae tile`; make one with `seamountae tile`")
    patch_px = int(patches["patch"].shape[-1])
    if patch_px < 8 or patch_px % 8:
        raise SeamountaeError(f"patches file: patches of {patch_px} px; the autoencoder needs a multiple of 8, "
                              "so tile again with --patch-px 16, 24 or 32")
    seed_everything(seed)
    try:
        dev = resolve_device(device)
    except (ValueError, RuntimeError) as exc:
        raise SeamountaeError(str(exc)) from None
    args = (patches, epochs, seed, latent, width, batch_size, learning_rate, folds, tuple(evidence), shape_classes,
            float(outlier_weight), float(outlier_margin))
    if not distributed.launched():
        return _train(dev, *args, progress, checkpoint, resume, on_epoch)
    dev = distributed.device_for(dev)
    created = distributed.init(dev)
    try:
        return _train(dev, *args, progress and distributed.is_main(), checkpoint, resume, on_epoch)
    finally:
        distributed.teardown(created)


def assign_folds(groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Calibration fold (0..folds-1) of each of `groups` (seamount ids): whole seamounts, balanced, seeded."""
    unique = np.unique(groups)
    fold_of = np.random.default_rng(seed).permutation(len(unique)) % folds
    return fold_of[np.searchsorted(unique, groups)]


def _train(dev, patches, epochs, seed, latent, width, batch_size, learning_rate, folds, evidence_names, n_classes,
           outlier_weight, outlier_margin, progress, checkpoint, resume, on_epoch):
    main = distributed.rank() == 0
    x_np, valid_np, _ = normalise(patches["patch"].values)
    x = torch.from_numpy(x_np)[:, None]
    valid = torch.from_numpy(valid_np.astype(np.float32))[:, None]
    groups = patches["seamount"].values
    if len(x) == 0:
        raise SeamountaeError("patches file: no patches to train on; tile a catalogue with seamounts inside the grid")
    n_seamounts = len(np.unique(groups))
    if n_seamounts < folds:
        raise SeamountaeError(f"patches file: {n_seamounts} training seamount(s), fewer than the {folds} calibration folds; "
                              "tile a catalogue with more seamounts, or train with fewer --folds (at least 2)")
    fold_of_patch = assign_folds(groups, folds, seed)
    labels = patches["candidate_label"].values.astype(int)
    if not (labels == 1).any() or not (labels == 0).any():
        raise SeamountaeError("patches file: the training grid has no "
                              + ("catalogued seamount among its candidates" if not (labels == 1).any() else
                                 "background candidate (every summit is near a catalogued seamount)")
                              + "; tile a larger grid, so that the score can be calibrated on seamounts and background")
    # A training seamount's candidate is judged in its seamount's fold; the others (background, and
    # seamounts without patches to train on) in a seeded share of the folds.
    fold_of_seamount = dict(zip(groups.tolist(), fold_of_patch.tolist()))
    cand_fold = np.random.default_rng(seed + 1).permutation(len(labels)) % folds
    for i, s in enumerate(patches["candidate_seamount"].values.tolist()):
        cand_fold[i] = fold_of_seamount.get(s, cand_fold[i])
    cand_patches = patches["candidate_patch"].values
    cand_evidence = {name: np.full(len(labels), np.nan) for name in MODEL_COLUMNS}
    # The score map's calibration: each training seamount's own patch, scored by the map's own runner
    # at every precision `score` may use, by a model trained without it.
    held_out = {precision: np.full(len(labels), np.nan) for precision in config.PRECISIONS}

    expected = fingerprint(patches, epochs=epochs, seed=seed, latent=latent, width=width, batch_size=batch_size,
                           learning_rate=learning_rate, folds=folds, outlier_weight=outlier_weight,
                           outlier_margin=outlier_margin)
    background = labels == 0
    if outlier_weight > 0:
        bx, bv, _ = normalise(cand_patches[background][:, 0])
        background_x, background_v = torch.from_numpy(bx)[:, None], torch.from_numpy(bv.astype(np.float32))[:, None]
    state = None
    if resume and checkpoint is not None and not Path(checkpoint).exists():
        (log.warning if main else log.debug)("%s: no checkpoint to resume from; training from the first epoch",
                                             checkpoint)
    elif resume and checkpoint is not None:
        state = read_checkpoint(checkpoint)
        why = checkpoint_mismatch(state, expected)
        if why:
            raise SeamountaeError(f"{checkpoint}: cannot resume: {why}; resume with the same patches and parameters, "
                                  "or train without --resume to start afresh")
        if any(f"held_out_{precision}" not in state for precision in held_out):
            raise SeamountaeError(f"{checkpoint}: cannot resume: it was written by an older seamountae; "
                                  "train without --resume to start afresh")
        cand_evidence = {name: state[f"candidate_{name}"].numpy().copy() for name in cand_evidence}
        held_out = {precision: state[f"held_out_{precision}"].numpy().copy() for precision in held_out}
        (log.info if main else log.debug)("%s: resuming after epoch %d of %d", checkpoint, int(state["epoch"]),
                                          epochs * (folds + 1))
    first_run = 0 if state is None else int(state["run"])
    histories = [] if state is None else [[float(v) for v in h] for h in state["histories"][:first_run]]
    for run in range(first_run, folds + 1):  # the folds, then the model on every seamount
        final = run == folds
        fit = np.ones(len(x), bool) if final else fold_of_patch != run
        done = list(histories)

        def save(epoch_state, run=run, done=done):
            return {**epoch_state, "run": run, "histories": done + [epoch_state["history"]], "fingerprint": expected,
                    **{f"candidate_{name}": torch.from_numpy(values.copy()) for name, values in cand_evidence.items()},
                    **{f"held_out_{precision}": torch.from_numpy(values.copy()) for precision, values in held_out.items()}}

        label = "final model" if final else f"calibration fold {run + 1}/{folds}"
        outliers = None
        if outlier_weight > 0:
            seen = torch.from_numpy(cand_fold[background] != run)  # never the background this fold will judge
            outliers = (background_x[seen], background_v[seen], outlier_weight, outlier_margin)
        model, history = _fit(x[fit], valid[fit], dev, epochs, seed + run, latent, width, batch_size, learning_rate,
                              progress, checkpoint if main else None, state if run == first_run else None, save,
                              on_epoch, run * epochs, label, outliers)
        histories.append(history)
        if final:
            break
        judged = cand_fold == run
        found = model_evidence(model, cand_patches[judged], LatentMemory.fit(encode(model, patches["patch"].values[fit])[1]))
        for name, values in cand_evidence.items():
            values[judged] = found[name]
        own = judged & (labels == 1)
        for precision, values in held_out.items():
            values[own] = map_errors(model, dev, cand_patches[own][:, 0], precision)

    table = {name[len("candidate_"):]: patches[name].values for name in patches.data_vars
             if name.startswith("candidate_") and patches[name].ndim == 1}
    # Kept as the model file stores them, so the combiner is fitted to the numbers it records.
    evidence = evidence_table(pd.DataFrame({**table, **cand_evidence})).apply(stored)
    n_unseen = int(patches.attrs.get("n_unseen", 0))
    combiner, chosen = calibrate(evidence, labels, n_unseen, evidence_names)
    with_model = calibrate(evidence, labels, n_unseen, sorted(set(evidence_names) | set(MODEL_EVIDENCE), key=EVIDENCE.index))[1]
    without_model = calibrate(evidence, labels, n_unseen, [n for n in evidence_names if n not in MODEL_EVIDENCE] or
                              [n for n in EVIDENCE if n not in MODEL_EVIDENCE])[1]
    fit_codes = encode(model, patches["patch"].values)[1]
    positives = labels == 1
    # Shape classes of the training seamounts: each catalogued seamount's own-scale patch, as score sees it.
    classes = ShapeClasses.fit(encode(model, cand_patches[positives][:, 0])[1], n_classes, seed,
                               {name: table[name][positives].astype(float) for name in DESCRIBED})
    (log.info if main else log.debug)(
        "trained %d runs of %d epochs: calibration F1 %.3f at threshold %.3f (with the autoencoder's evidence %.3f, "
        "without %.3f)", folds + 1, epochs, chosen["f1"], chosen["threshold"], with_model["f1"], without_model["f1"])
    meta = {
        "seamountae_version": __version__,
        "patch_km": float(patches.attrs["patch_km"]),
        "patch_px": int(patches.attrs["patch_px"]),
        "pyramid": [float(v) for v in np.atleast_1d(patches.attrs.get("pyramid", [1.0]))],
        "candidates": json.loads(patches.attrs["candidates"]),
        "normalisation": NORMALISATION,
        "latent_memory": LatentMemory.fit(fit_codes).as_meta(),
        # The training grids' terrain, for score's warning on grids unlike any of them (terrain.py).
        "terrain": terrain.training_range(json.loads(patches.attrs.get("terrain", "[]"))),
        "combiner": combiner.as_meta(),
        "shape_classes": classes.as_meta() if classes is not None else None,
        "threshold": {
            "value": chosen["threshold"],
            "rule": "best F1 on the training grid's candidates, each judged by a model trained without it "
                    f"({folds}-fold cross-fitting): catalogued seamounts against background summits farther than "
                    f"{BACKGROUND_KM:g} km from any catalogued seamount",
            "f1": chosen["f1"], "precision": chosen["precision"], "recall": chosen["recall"],
            "f1_with_model_evidence": with_model["f1"],
            "f1_without_model_evidence": without_model["f1"],
        },
        "calibration": {
            # The score map's p-values: errors of the training seamounts' own patches, each from a model without it.
            "errors": {precision: sorted(float(e) for e in values[positives] if np.isfinite(e))
                       for precision, values in held_out.items() if np.isfinite(values[positives]).any()},
            "source": f"training seamounts' own-scale patches, {folds}-fold cross-fitted, scored as the map is "
                      "at each precision",
            "n_seamounts": int(positives.sum()),
            "n_background": int((labels == 0).sum()),
            "n_unseen": n_unseen,
            "evidence": {name: [float(v) for v in evidence[name].to_numpy()] for name in evidence.columns},
            "label": [int(v) for v in labels],
        },
        "training": {
            "epochs": epochs,
            "folds": folds,
            "seed": seed,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "outlier_weight": outlier_weight,
            "outlier_margin": outlier_margin,
            "n_outliers": int(background.sum()) if outlier_weight > 0 else 0,
            "world_size": distributed.world_size(),
            "n_patches": int(len(x)),
            "n_seamounts": n_seamounts,
            "loss_history": [float(v) for v in histories[-1]],
            "fold_loss": [float(h[-1]) for h in histories[:-1] if h],
        },
    }
    return model.cpu(), meta


def map_errors(model: PatchAutoencoder, device: torch.device, patches: np.ndarray, precision: str) -> np.ndarray:
    """Errors of raw patches (n, p, p) as the score map computes them (runner.PatchScorer) at
    `precision`; NaN throughout where the device cannot run that precision."""
    try:
        return PatchScorer(model, str(device), precision=precision)(torch.from_numpy(patches))["error"].numpy()
    except RuntimeError as exc:  # e.g. bf16 on a GPU without it: that precision stays uncalibrated
        log.info("no %s calibration on %s: %s", precision, device, str(exc).splitlines()[0])
        return np.full(len(patches), np.nan, np.float32)


def _fit(x_fit, v_fit, dev, epochs, seed, latent, width, batch_size, learning_rate, progress, checkpoint, state, save,
         on_epoch, epoch_offset, label, outliers=None):
    """One training run of the autoencoder on (x_fit, v_fit); returns the model (eval mode) and the loss history
    (the seamount patches' reconstruction error).

    outliers: (x, valid, weight, margin) of background patches for outlier exposure (see `train`), or None.

    state: a checkpoint of this run to continue from (None: from the start). save(epoch_state) turns
    this run's state into the checkpoint's content; on_epoch gets epochs counted from epoch_offset.
    """
    world, rank = distributed.world_size(), distributed.rank()
    torch.manual_seed(seed)
    model = PatchAutoencoder(patch_px=x_fit.shape[-1], latent=latent, width=width).to(dev)
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(x_fit) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, learning_rate, total_steps=max(1, epochs * steps_per_epoch))
    shuffler = torch.Generator().manual_seed(seed)
    history: list[float] = []
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        shuffler.set_state(state["shuffler"])
        torch.set_rng_state(state["torch_rng"])
        if dev.type == "cuda" and state.get("cuda_rng"):
            torch.cuda.set_rng_state(state["cuda_rng"][0], dev)
        history = [float(v) for v in state["history"]]
        start = int(state["epoch"]) - epoch_offset
        if state.get("world_size", 1) != world and rank == 0:
            log.info("checkpoint made by %d process(es), continued by %d: the model will equal an uninterrupted "
                     "run's only up to rounding", state.get("world_size", 1), world)
    net = model
    if world > 1:
        # Wrapped after loading the checkpoint: its constructor gives every process rank 0's weights.
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    bar = progress_bar(range(start, epochs), progress, desc=label, unit="epoch", initial=start, total=epochs)
    try:
        for epoch in bar:
            net.train()
            # The same generator state on every process: the same order and augmentation everywhere.
            order = torch.randperm(len(x_fit), generator=shuffler)
            total = 0.0
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                k = int(torch.randint(8, (1,), generator=shuffler))
                # Each process takes every world-th patch of the batch (none, if the last batch is
                # smaller than the world: it still steps, as DDP needs every process in every step).
                mine = idx[rank::world] if world > 1 else idx
                xb, vb = dihedral(x_fit[mine], k), dihedral(v_fit[mine], k)
                n_own = len(xb)
                if outliers is not None:
                    # As many background patches, drawn with replacement, in the same forward pass
                    # (DDP expects one forward per backward).
                    pick = torch.randint(len(outliers[0]), (len(idx),), generator=shuffler)
                    pick = pick[rank::world] if world > 1 else pick
                    xb = torch.cat([xb, dihedral(outliers[0][pick], k)])
                    vb = torch.cat([vb, dihedral(outliers[1][pick], k)])
                xb, vb = xb.to(dev), vb.to(dev)
                all_errors = masked_error(net(xb), xb, vb)
                errors = all_errors[:n_own]
                push = None if outliers is None else outliers[2] * torch.relu(outliers[3] - all_errors[n_own:])
                if world == 1:
                    loss = errors.mean()
                    batch_loss = loss.detach()
                    if push is not None:
                        loss = loss + push.mean()
                else:
                    # DDP averages gradients over processes: scaled by world / batch, their average is
                    # the gradient of the whole batch's mean, as in one process, even for unequal shares.
                    loss = errors.sum() * (world / len(idx))
                    if push is not None:
                        loss = loss + push.sum() * (world / len(idx))
                    # Summed over processes, so a NaN anywhere stops them all at this step, none left waiting.
                    batch_loss = distributed.all_reduce_sum(errors.detach().sum()) / len(idx)
                if not torch.isfinite(batch_loss):
                    raise SeamountaeError(f"training diverged in epoch {epoch + 1} of the {label} (loss is "
                                          f"{batch_loss.item()}); lower --learning-rate or check the patches file for bad values")
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                total += batch_loss.item() * len(idx)
            history.append(total / len(x_fit))
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{history[-1]:.4f}")
            log.debug("%s, epoch %d/%d: loss %.5f", label, epoch + 1, epochs, history[-1])
            if checkpoint is not None:
                content = save({
                    "format": CHECKPOINT_FORMAT,
                    "seamountae_version": __version__,
                    "epoch": epoch_offset + epoch + 1,
                    "world_size": world,
                    "history": list(history),
                    "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict(),
                    "shuffler": shuffler.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": [torch.cuda.get_rng_state(dev)] if dev.type == "cuda" else [],
                })
                _save_checkpoint(checkpoint, content)
            if world > 1:
                distributed.barrier()  # on to the next epoch only once this one is safely on disk
            if on_epoch is not None:
                on_epoch(epoch_offset + epoch + 1, history[-1])
    finally:
        del net  # DDP's reducer must be freed before the process group (see distributed.teardown)
    model.eval()
    return model, history
