"""Training the autoencoder on seamount patches, and calibrating its errors on held-out seamounts.

Calibration is what gives `score` meaning: a fifth of the catalogued seamounts (all their
augmented patches) are held out of training, and their reconstruction errors become the reference
distribution. A patch's score is its conformal p-value against that distribution — the fraction
of held-out seamounts reconstructed no better than it — so `--threshold auto` (score ≥ 0.05) keeps
about 95 % of real seamounts by construction. Errors of the patches the model was fitted on are
optimistic and would cut recall (the design notes measured a third).

Under torchrun (several processes, see `distributed`), training is data-parallel and otherwise the
same run: every process draws the same shuffled order and augmentation from the same seeded
generator, takes its share of each batch of `batch_size`, and DistributedDataParallel averages the
gradients. The batches, the number of steps and the learning-rate schedule are those of one
process, so N processes fit the model one process would, up to the order of floating-point sums.
"""

from __future__ import annotations

import hashlib
import logging
import math
import sys
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import xarray as xr

from . import __version__
from . import distributed
from .errors import SeamountaeError
from .model import PatchAutoencoder, artifact, load_artifact, masked_error, resolve_device
from .outputs import atomic_output
from .patches import normalise

log = logging.getLogger("seamountae")

NORMALISATION = "plane-removed, std-scaled"


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 rotations/reflections of a batch of patches (seamounts have no up or east)."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x


def split_holdout(groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of patches whose seamount is held out (whole seamounts, never single patches)."""
    unique = np.unique(groups)
    n_hold = int(round(fraction * len(unique)))
    if len(unique) < 5 or n_hold == 0:
        return np.zeros(len(groups), bool)
    held = np.random.default_rng(seed).choice(unique, n_hold, replace=False)
    return np.isin(groups, held)


def reconstruction_errors(model: torch.nn.Module, x: torch.Tensor, valid: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    device = next(model.parameters()).device
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            xb, vb = x[i : i + batch_size].to(device), valid[i : i + batch_size].to(device)
            out.append(masked_error(model(xb), xb, vb).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def _progress(iterable, enabled: bool, **kw):
    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(iterable, file=sys.stderr, **kw)
    return iterable


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
    keys = ("epochs", "seed", "latent", "width", "batch_size", "learning_rate", "holdout_fraction")
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
    epochs: int = 40,
    seed: int = 0,
    device: str = "auto",
    latent: int = 16,
    width: int = 16,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    holdout_fraction: float = 0.2,
    progress: bool = True,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[int, float], None] | None = None,
) -> tuple[PatchAutoencoder, dict]:
    """Fit an autoencoder to the patches; return it with the metadata its model file carries.

    checkpoint: a file rewritten (atomically) after every epoch with everything training needs to
    go on: weights, optimiser, schedule, random states, epoch and loss history (tensors and plain
    types only, loadable with weights_only=True). With resume=True, training continues from it
    (a missing checkpoint starts afresh, one made with other patches or parameters is refused),
    and the result equals an uninterrupted run's. The caller deletes it once the model is saved.
    on_epoch(epoch, loss) is called after each epoch (and its checkpoint).

    Started by torchrun with several processes, it trains data-parallel (see the module notes):
    every process returns the same model and metadata, only rank 0 writes the checkpoint, and the
    process group is torn down on return.
    """
    if patches.attrs.get("seamountae_kind") != "patches":
        raise SeamountaeError("patches file: not written by `seamountae tile`; make one with `seamountae tile`")
    patch_px = int(patches["patch"].shape[-1])
    if patch_px < 8 or patch_px % 8:
        raise SeamountaeError(f"patches file: patches of {patch_px} px; the autoencoder needs a multiple of 8, "
                              "so tile again with --patch-px 16, 24 or 32")
    seed_everything(seed)
    try:
        dev = resolve_device(device)
    except (ValueError, RuntimeError) as exc:
        raise SeamountaeError(str(exc)) from None
    if not distributed.launched():
        return _train(patches, dev, epochs, seed, latent, width, batch_size, learning_rate, holdout_fraction,
                      progress, checkpoint, resume, on_epoch)
    dev = distributed.device_for(dev)
    created = distributed.init(dev)
    try:
        return _train(patches, dev, epochs, seed, latent, width, batch_size, learning_rate, holdout_fraction,
                      progress and distributed.is_main(), checkpoint, resume, on_epoch)
    finally:
        distributed.teardown(created)


def _train(patches, dev, epochs, seed, latent, width, batch_size, learning_rate, holdout_fraction,
           progress, checkpoint, resume, on_epoch):
    world, rank = distributed.world_size(), distributed.rank()
    main = rank == 0
    x_np, valid_np, _ = normalise(patches["patch"].values)
    held = split_holdout(patches["seamount"].values, holdout_fraction, seed)
    x = torch.from_numpy(x_np)[:, None]
    valid = torch.from_numpy(valid_np.astype(np.float32))[:, None]
    x_fit, v_fit = x[~held], valid[~held]
    if len(x_fit) == 0:
        raise SeamountaeError("patches file: no patches to train on; tile a catalogue with seamounts inside the grid")

    model = PatchAutoencoder(patch_px=x.shape[-1], latent=latent, width=width).to(dev)
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(x_fit) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, learning_rate, total_steps=max(1, epochs * steps_per_epoch))
    shuffler = torch.Generator().manual_seed(seed)
    history: list[float] = []
    start = 0
    expected = fingerprint(patches, epochs=epochs, seed=seed, latent=latent, width=width, batch_size=batch_size,
                           learning_rate=learning_rate, holdout_fraction=holdout_fraction)
    if resume and checkpoint is not None and not Path(checkpoint).exists():
        (log.warning if main else log.debug)("%s: no checkpoint to resume from; training from the first epoch",
                                             checkpoint)
    elif resume and checkpoint is not None:
        state = read_checkpoint(checkpoint)
        why = checkpoint_mismatch(state, expected)
        if why:
            raise SeamountaeError(f"{checkpoint}: cannot resume: {why}; resume with the same patches and parameters, "
                                  "or train without --resume to start afresh")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        shuffler.set_state(state["shuffler"])
        torch.set_rng_state(state["torch_rng"])
        if dev.type == "cuda" and state.get("cuda_rng"):
            torch.cuda.set_rng_state(state["cuda_rng"][0], dev)
        history = [float(v) for v in state["history"]]
        start = int(state["epoch"])
        (log.info if main else log.debug)("%s: resuming after epoch %d of %d", checkpoint, start, epochs)
        if state.get("world_size", 1) != world and main:
            log.info("%s: made by %d process(es), continued by %d: the model will equal an uninterrupted run's "
                     "only up to rounding", checkpoint, state.get("world_size", 1), world)
    net = model
    if world > 1:
        # Wrapped after loading the checkpoint: its constructor gives every process rank 0's weights.
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    bar = _progress(range(start, epochs), progress, desc="train", unit="epoch", initial=start, total=epochs)
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
                xb, vb = dihedral(x_fit[mine], k).to(dev), dihedral(v_fit[mine], k).to(dev)
                errors = masked_error(net(xb), xb, vb)
                if world == 1:
                    loss = errors.mean()
                    batch_loss = loss.detach()
                else:
                    # DDP averages gradients over processes: scaled by world / batch, their average is
                    # the gradient of the whole batch's mean, as in one process, even for unequal shares.
                    loss = errors.sum() * (world / len(idx))
                    # Summed over processes, so a NaN anywhere stops them all at this step, none left waiting.
                    batch_loss = distributed.all_reduce_sum(errors.detach().sum()) / len(idx)
                if not torch.isfinite(batch_loss):
                    raise SeamountaeError(f"training diverged in epoch {epoch + 1} (loss is {batch_loss.item()}); "
                                          "lower --learning-rate or check the patches file for bad values")
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                total += batch_loss.item() * len(idx)
            history.append(total / len(x_fit))
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{history[-1]:.4f}")
            log.debug("epoch %d/%d: loss %.5f", epoch + 1, epochs, history[-1])
            if checkpoint is not None and main:
                _save_checkpoint(checkpoint, {
                    "format": CHECKPOINT_FORMAT,
                    "seamountae_version": __version__,
                    "fingerprint": expected,
                    "epoch": epoch + 1,
                    "world_size": world,
                    "history": list(history),
                    "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "optimiser": optimiser.state_dict(),
                    "schedule": schedule.state_dict(),
                    "shuffler": shuffler.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": [torch.cuda.get_rng_state(dev)] if dev.type == "cuda" else [],
                })
            if checkpoint is not None:
                distributed.barrier()  # on to the next epoch only once this one is safely on disk
            if on_epoch is not None:
                on_epoch(epoch + 1, history[-1])
    finally:
        del net  # DDP's reducer must be freed before the process group (see distributed.teardown)
    model.eval()

    fit_errors = _errors(model, x_fit, v_fit, world)
    if held.any():
        calibration_errors, source = _errors(model, x[held], valid[held], world), "held-out seamounts"
    else:
        (log.warning if main else log.debug)("fewer than 5 seamounts: calibrating on training errors, "
                                             "so --threshold auto will be too strict")
        calibration_errors, source = fit_errors, "training patches (too few seamounts to hold any out)"
    (log.info if main else log.debug)("trained %d epochs: loss %.4f, held-out median error %.4f", epochs,
                                      history[-1] if history else float("nan"), float(np.median(calibration_errors)))
    meta = {
        "seamountae_version": __version__,
        "patch_km": float(patches.attrs["patch_km"]),
        "patch_px": int(patches.attrs["patch_px"]),
        "pyramid": [float(v) for v in np.atleast_1d(patches.attrs.get("pyramid", [1.0]))],
        "radius_ratio": float(patches.attrs.get("radius_ratio", 0.0)),
        "normalisation": NORMALISATION,
        "calibration": {
            "errors": sorted(float(e) for e in calibration_errors),
            "source": source,
            "n_seamounts": int(len(np.unique(patches["seamount"].values[held]))) if held.any() else 0,
        },
        "training": {
            "epochs": epochs,
            "seed": seed,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "world_size": world,
            "n_patches": int(len(x_fit)),
            "n_seamounts": int(len(np.unique(patches["seamount"].values[~held]))),
            "loss_history": [float(v) for v in history],
            "fit_error_median": float(np.median(fit_errors)),
        },
    }
    return model.cpu(), meta


def _errors(model, x, valid, world: int) -> np.ndarray:
    """Reconstruction errors of all patches: with several processes, each computes a contiguous
    share and every process gets them all, in order."""
    if world == 1:
        return reconstruction_errors(model, x, valid)
    part = distributed.shard(len(x))
    return distributed.all_gather_array(reconstruction_errors(model, x[part], valid[part]))


def save_model(model: PatchAutoencoder, meta: dict, path) -> None:
    """Save the model artifact to a path or a binary file handle.

    Saved through a handle, so the archive's inner folder name does not come from the (random)
    temporary file name: the same model gives the same bytes.
    """
    if hasattr(path, "write"):
        torch.save(artifact(model, **meta), path)
        return
    with open(path, "wb") as handle:
        torch.save(artifact(model, **meta), handle)


def read_model(path) -> tuple[PatchAutoencoder, dict]:
    """Load a model file safely (no code runs), as a SeamountaeError if it is not one."""
    try:
        return load_artifact(path)
    except ValueError as exc:
        raise SeamountaeError(str(exc)) from None


def conformal_score(errors: np.ndarray, calibration_errors) -> np.ndarray:
    """Seamount-likeness on [0, 1]: (1 + #held-out errors ≥ e) / (n + 1), NaN stays NaN.

    A real seamount's score is uniform on [0, 1], so score ≥ α keeps a fraction 1 − α of them.
    """
    ref = np.sort(np.asarray(calibration_errors, np.float64))
    e = np.asarray(errors, np.float64)
    count_ge = len(ref) - np.searchsorted(ref, e, side="left")
    score = (1.0 + count_ge) / (len(ref) + 1.0)
    return np.where(np.isfinite(e), score, np.nan).astype(np.float32)
