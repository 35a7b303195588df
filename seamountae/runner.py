"""The model runner: the autoencoder on a device, turning batches of raw patches into per-patch
statistics (reconstruction error and relief), at the precision a score runs at.

One runner serves every forward pass of a score (the map's lattice, lattice.py, and the
candidates' evidence) and of training's map calibration, so errors are compared with calibration
errors computed by the same arithmetic at the same precision.

Layer 3, arithmetic: imports layers 1-3 only.
"""

from __future__ import annotations

import logging
import os

import torch

from .config import default
from .errors import SeamountaeError
from .model import (PatchAutoencoder, calibrated_precisions, in_precision, masked_error, resolve_device,
                    resolve_precision)
from .patches import MAX_NAN_FRACTION, Relief, normaliser

log = logging.getLogger("seamountae")

OUTPUTS = ("error", "relief_m")  # the statistics of each patch, in the order PatchScorer.stats returns them
# Patches per forward pass on the CPU: larger batches spill the caches and run slower (measured
# on 2 cores, 32-px patches: 128 about 5–10 % faster than 256, 2x faster than 1024).
CPU_BATCH = 128
MAX_CUDA_BATCH = 1 << 15
MIN_BATCH = 16  # smaller batches take other kernels, with other rounding


def auto_batch_size(device: torch.device, patch_px: int = 32, width: int = 16) -> int:
    """Patches per forward pass: as many as fit comfortably in free memory, capped where speed stops growing.

    On CUDA up to a quarter of the free device memory (at most 32768 patches); on the CPU at most
    CPU_BATCH (cache-sized batches are fastest) and at most a tenth of the free RAM.
    """
    # Live float32 activations per patch in a forward pass, with normalisation temporaries.
    per_patch = 4 * (16 * patch_px**2 + 6 * width * (patch_px // 2) ** 2)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(max(256, min(MAX_CUDA_BATCH, free // 4 // per_patch)))
    try:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        free = 1 << 30
    return int(max(32, min(CPU_BATCH, free // 10 // per_patch)))


class PatchScorer:
    """The model on a device, turning batches of raw patches (metres) into per-patch statistics.

    batch_size "auto" (or None) picks it from free memory (`auto_batch_size`). The forward pass runs
    at `precision` (config.PRECISIONS, or auto: model.resolve_precision) under autocast; training
    calibrates the map with this same runner at each precision (training.map_errors), so errors
    computed at one precision are compared with calibration errors computed at the same one.
    `patches_scored` counts the patches that went through the model.
    """

    def __init__(self, model: PatchAutoencoder, device: str = "auto", batch_size: int | str | None = "auto",
                 precision: str = default("score", "precision")):
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.network = model.for_inference()  # the same function, 10–30 % faster on CPUs
        p = int(model.patch_px)
        self.patch_px = p
        if batch_size in (None, "auto"):
            batch_size = auto_batch_size(self.device, p, int(getattr(model, "width", 16)))
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size {batch_size}: must be 1 or more")
        self.precision = resolve_precision(precision, self.device)
        # Batches are padded to a multiple of this: one shape on the CPU, a few dozen at most on CUDA.
        self._granule = self.batch_size if self.device.type == "cpu" else min(self.batch_size, 1024)
        self._normalise = normaliser(p, str(self.device))
        self._relief = Relief(p, self.device)
        self.min_valid = (1 - MAX_NAN_FRACTION) * p * p
        self.patches_scored = 0

    def stats(self, patches: torch.Tensor, complete: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(error, relief_m) of one batch (n, p, p) of raw patches on the device; NaN if unusable.

        complete: the caller knows every cell of every patch is valid (None: check).
        """
        n = patches.shape[0]
        size = max(MIN_BATCH, -(-n // self._granule) * self._granule)
        if 0 < n < size:
            # Every batch size is another set of oneDNN kernels (~5 MB each, cached for good) and tiny
            # ones round differently: pad the last batch of a window to one of a few sizes.
            pad = patches[:1].expand(size - n, *patches.shape[1:])
            error, relief = self.stats(torch.cat([patches, pad]), complete)
            self.patches_scored -= size - n
            return error[:n], relief[:n]
        flat = patches.reshape(n, -1)
        if complete is None:
            complete = bool(torch.isfinite(flat).all())
        if complete:  # the common case, in fewer passes over memory
            x = self._normalise.complete(flat)
            error = (self._forward(x) - x).square_().mean(1)
            self.patches_scored += n
            return error, self._relief(flat, complete=True)
        x, w, _ = self._normalise(flat)
        error = masked_error(self._forward(x), x, w)
        usable = w.sum(1) >= self.min_valid
        self.patches_scored += n
        return torch.where(usable, error, torch.nan), torch.where(usable, self._relief(flat), torch.nan)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        with in_precision(self.device, self.precision):
            recon = self.network(x.view(n, 1, self.patch_px, self.patch_px))
        return recon.float().reshape(n, -1)

    def __call__(self, patches: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {name: [] for name in OUTPUTS}
        with torch.inference_mode():
            for i in range(0, len(patches), self.batch_size):
                raw = patches[i : i + self.batch_size].to(self.device, non_blocking=True)
                error, relief = self.stats(raw)
                out["error"].append(error.float().cpu())
                out["relief_m"].append(relief.float().cpu())
        return {k: torch.cat(v) if v else torch.zeros(0) for k, v in out.items()}


def score_precision(meta: dict, requested: str, device: str | torch.device = "auto", model_label: str = "the model",
                    resolved: str | None = None) -> str:
    """The precision a score runs at: `requested` (auto: model.resolve_precision for the device, or
    `resolved` where another process, a dask worker, resolved it) if the model is calibrated at it.
    auto falls back to fp32 for a model without that calibration; a precision asked for by name
    that the model lacks is a SeamountaeError."""
    precision = resolved or resolve_precision(requested, resolve_device(str(device)))
    available = calibrated_precisions(meta)
    if precision in available:
        return precision
    if requested == "auto":
        log.info("%s has no %s calibration: scoring in fp32", model_label, precision)
        return "fp32"
    raise SeamountaeError(f"{model_label} has no {precision} calibration (calibrated at {', '.join(available)}); score "
                          f"with --precision {available[0]}, or train the model again with this seamountae")


def return_freed_memory() -> None:
    """Have glibc hand freed window-sized blocks (6 MiB or more) straight back to the system.

    Scoring allocates and frees window-sized arrays over and over. glibc's adaptive mmap threshold
    would, after the first window, serve such blocks from its heap, where fragmentation keeps them
    resident, and memory would creep up by a window's worth or more. Smaller blocks (a batch's
    activations) stay in the heap and are reused without page faults. Call it once, at the start of
    a process that scores (`seamountae score` does). A no-op where glibc is not the C library.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, 6 << 20)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass
