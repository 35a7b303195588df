"""Training the autoencoder on seamount patches, and calibrating its errors on held-out seamounts.

Calibration is what gives `score` meaning: a fifth of the catalogued seamounts (all their
augmented patches) are held out of training, and their reconstruction errors become the reference
distribution. A patch's score is its conformal p-value against that distribution — the fraction
of held-out seamounts reconstructed no better than it — so `--threshold auto` (score ≥ 0.05) keeps
about 95 % of real seamounts by construction. Errors of the patches the model was fitted on are
optimistic and would cut recall (the design notes measured a third).
"""

from __future__ import annotations

import logging
import math
import sys

import numpy as np
import torch
import xarray as xr

from . import __version__
from .errors import SeamountaeError
from .model import PatchAutoencoder, artifact, load_artifact, masked_error, resolve_device
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
) -> tuple[PatchAutoencoder, dict]:
    """Fit an autoencoder to the patches; return it with the metadata its model file carries."""
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
    history = []
    bar = _progress(range(epochs), progress, desc="train", unit="epoch")
    for _epoch in bar:
        model.train()
        order = torch.randperm(len(x_fit), generator=shuffler)
        total = 0.0
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            k = int(torch.randint(8, (1,), generator=shuffler))
            xb, vb = dihedral(x_fit[idx], k).to(dev), dihedral(v_fit[idx], k).to(dev)
            loss = masked_error(model(xb), xb, vb).mean()
            if not torch.isfinite(loss.detach()):
                raise SeamountaeError("training diverged (loss is NaN); lower --learning-rate or check the patches file for bad values")
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += loss.item() * len(idx)
        history.append(total / len(x_fit))
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{history[-1]:.4f}")
    model.eval()

    fit_errors = reconstruction_errors(model, x_fit, v_fit)
    if held.any():
        calibration_errors, source = reconstruction_errors(model, x[held], valid[held]), "held-out seamounts"
    else:
        log.warning("fewer than 5 seamounts: calibrating on training errors, so --threshold auto will be too strict")
        calibration_errors, source = fit_errors, "training patches (too few seamounts to hold any out)"
    log.info("trained %d epochs: loss %.4f, held-out median error %.4f", epochs, history[-1] if history else float("nan"),
             float(np.median(calibration_errors)))
    meta = {
        "seamountae_version": __version__,
        "patch_km": float(patches.attrs["patch_km"]),
        "patch_px": int(patches.attrs["patch_px"]),
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
            "n_patches": int(len(x_fit)),
            "n_seamounts": int(len(np.unique(patches["seamount"].values[~held]))),
            "loss_history": [float(v) for v in history],
            "fit_error_median": float(np.median(fit_errors)),
        },
    }
    return model.cpu(), meta


def save_model(model: PatchAutoencoder, meta: dict, path) -> None:
    torch.save(artifact(model, **meta), path)


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
