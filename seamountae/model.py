"""The autoencoder as a pure nn.Module, and the model artifact.

The artifact is a plain dict of tensors, numbers, strings and lists saved with torch.save and
loaded with `torch.load(weights_only=True)`, which refuses to unpickle anything else: a model file
can never run code. It carries everything `score` needs besides the grid.

Layer 3, arithmetic: imports layers 1-3 only.
"""

from __future__ import annotations

import contextlib
import copy
import warnings

import torch
from torch import nn

from . import config
from .errors import SeamountaeError

ARTIFACT_FORMAT = "seamountae-model"
ARTIFACT_VERSION = 1


class PatchAutoencoder(nn.Module):
    """Convolutional autoencoder for single-channel square patches of `patch_px` pixels.

    Three stride-2 convolutions down to a (patch_px/8)² map, a small dense bottleneck of
    `latent` numbers, and the mirror image up. The bottleneck is what makes it one-class: it can
    only describe the few shapes it was trained on.
    """

    def __init__(self, patch_px: int = 32, latent: int = 16, width: int = 16):
        super().__init__()
        if patch_px % 8:
            raise ValueError("patch_px must be a multiple of 8")
        self.patch_px, self.latent, self.width = patch_px, latent, width
        side = patch_px // 8
        w1, w2, w3 = width, 2 * width, 4 * width
        self.encoder = nn.Sequential(
            nn.Conv2d(1, w1, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(w1, w2, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(w2, w3, 3, stride=2, padding=1), nn.GELU(),
            nn.Flatten(),
            nn.Linear(w3 * side * side, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, w3 * side * side), nn.GELU(),
            nn.Unflatten(1, (w3, side, side)),
            nn.ConvTranspose2d(w3, w2, 4, stride=2, padding=1), nn.GELU(),
            nn.ConvTranspose2d(w2, w1, 4, stride=2, padding=1), nn.GELU(),
            nn.ConvTranspose2d(w1, 1, 4, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))

    def for_inference(self) -> nn.Module:
        """The same function, faster to evaluate: each transposed convolution as a convolution and a pixel shuffle.

        A 4×4, stride-2 transposed convolution gives every output pixel from a 2×2 corner of its
        kernel, one corner per output phase (row and column parity). A 3×3 convolution with 4× the
        output channels computes the four phases at once (each from its corner; the other taps are
        zero) and PixelShuffle(2) interleaves them. It does 2.25× the multiply-adds but runs on the
        convolution kernels, which are faster than the transposed ones on CPUs: the forward pass is 10–30 %
        faster. Its weights are stored channels-last, which oneDNN's convolutions prefer (another
        5–20 %, measured with batches of 128–256). Outputs agree to float rounding (~1e-7 of the
        output's scale). Not for training.
        """
        layers = [_as_subpixel(layer) if isinstance(layer, nn.ConvTranspose2d) else layer for layer in self.decoder]
        network = nn.Sequential(copy.deepcopy(self.encoder), nn.Sequential(*layers)).eval()
        return network.to(memory_format=torch.channels_last)

    def hyperparameters(self) -> dict:
        return {"patch_px": self.patch_px, "latent": self.latent, "width": self.width}


# Output phase (row or column parity) → {input offset: kernel tap} of a 4×4, stride-2, padding-1
# transposed convolution: output 2i + phase reads input i + offset through kernel index tap.
_SUBPIXEL_TAPS = {0: {0: 1, -1: 3}, 1: {0: 2, 1: 0}}


def _as_subpixel(deconv: nn.ConvTranspose2d) -> nn.Sequential:
    """A ConvTranspose2d(kernel 4, stride 2, padding 1) as Conv2d(kernel 3, padding 1) + PixelShuffle(2)."""
    if deconv.kernel_size != (4, 4) or deconv.stride != (2, 2) or deconv.padding != (1, 1) or deconv.groups != 1:
        raise ValueError(f"no sub-pixel form for {deconv}")
    weight = deconv.weight.detach()  # (in, out, 4, 4)
    c_in, c_out = weight.shape[:2]
    kernel = weight.new_zeros(c_out, 2, 2, c_in, 3, 3)  # PixelShuffle reads channel o·4 + 2·row phase + column phase
    for a, rows in _SUBPIXEL_TAPS.items():
        for b, cols in _SUBPIXEL_TAPS.items():
            for dh, kh in rows.items():
                for dw, kw in cols.items():
                    kernel[:, a, b, :, dh + 1, dw + 1] = weight[:, :, kh, kw].T
    conv = nn.Conv2d(c_in, 4 * c_out, 3, padding=1, bias=deconv.bias is not None).to(weight.device)
    with torch.no_grad():
        conv.weight.copy_(kernel.reshape(4 * c_out, c_in, 3, 3))
        if deconv.bias is not None:
            conv.bias.copy_(deconv.bias.detach().repeat_interleave(4))
    return nn.Sequential(conv, nn.PixelShuffle(2))


def masked_error(recon: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean squared error per patch over valid pixels only (missing cells carry no evidence)."""
    diff = (recon - target) ** 2 * valid
    return diff.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1)


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' → the first CUDA device when one is present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu or auto")
    return device


# The dtype of each precision a forward pass may run in (config.PRECISIONS), under torch.autocast.
PRECISION_DTYPES = dict(zip(config.PRECISIONS, (torch.float32, torch.bfloat16, torch.float16)))


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes in bfloat16 natively (a CPU with AVX512-BF16 or AMX, a CUDA device of
    compute capability 8 or more); elsewhere bf16 is emulated and slower than float32."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private, hence guarded
    return device.type == "cpu" and any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def resolve_precision(name: str, device: torch.device) -> str:
    """'auto' → the fastest precision the device runs natively: fp16 on CUDA, bf16 on a CPU with bf16
    instructions, fp32 otherwise. Other names are returned as they are (ValueError if unknown)."""
    if name == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if native_bf16(device) else "fp32"
    if name not in config.PRECISIONS:
        raise ValueError(f"precision {name!r}: use auto, " + ", ".join(config.PRECISIONS))
    return name


def in_precision(device: torch.device, precision: str):
    """The context a forward pass runs in: autocast to `precision` (fp32: none)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=PRECISION_DTYPES[precision])


def calibrated_precisions(meta: dict) -> tuple[str, ...]:
    """The precisions the model's score map is calibrated at (a model written before calibration per
    precision holds fp32 only)."""
    errors = meta["calibration"]["errors"]
    return tuple(errors) if isinstance(errors, dict) else ("fp32",)


def calibration_errors(meta: dict, precision: str) -> list[float]:
    """The training seamounts' held-out errors, computed at `precision` (one of calibrated_precisions):
    what a map scored at that precision is compared with (calibration.conformal_score)."""
    errors = meta["calibration"]["errors"]
    return (errors if isinstance(errors, dict) else {"fp32": errors})[precision]


def artifact(model: PatchAutoencoder, **meta) -> dict:
    """The model file's content: weights plus plain-typed metadata (patch size, calibration…)."""
    return {
        "format": ARTIFACT_FORMAT,
        "format_version": ARTIFACT_VERSION,
        "architecture": model.hyperparameters(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **meta,
    }


def load_artifact(path) -> tuple[PatchAutoencoder, dict]:
    """Load a model file without executing any code in it; raise ValueError (one line) if it is not one."""
    try:
        with warnings.catch_warnings():
            # torch warns about unusual pickle protocols before refusing them; the refusal is the message.
            warnings.simplefilter("ignore")
            content = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such model file; train one with `seamountae train`") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory; give the MODEL.pt written by `seamountae train`") from None
    except Exception as exc:  # truncated, foreign, or a pickle that tries to import/run code
        blocked = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line), "")
        if blocked:  # the safe unpickler met a reference to a Python callable and stopped before calling it
            detail = f" ({blocked.rstrip('.')})"
            raise ValueError(f"{path}: refused: the file holds Python objects, not only weights, and loading it could run "
                             f"code{detail}; use a MODEL.pt written by `seamountae train`") from None
        raise ValueError(f"{path}: not a seamountae model file (unreadable: truncated, damaged or another format); "
                         "use a MODEL.pt written by `seamountae train`") from None
    if not isinstance(content, dict) or content.get("format") != ARTIFACT_FORMAT:
        raise ValueError(f"{path}: not a seamountae model file; use a MODEL.pt written by `seamountae train`")
    if content.get("format_version", 0) > ARTIFACT_VERSION:
        raise ValueError(f"{path}: written by a newer seamountae (format {content['format_version']}); upgrade seamountae")
    try:
        model = PatchAutoencoder(**content["architecture"])
        model.load_state_dict(content["state_dict"])
        meta_ok = float(content["patch_km"]) > 0 and int(content["patch_px"]) == model.patch_px
        meta_ok = meta_ok and len(calibration_errors(content, "fp32")) > 0
    except (KeyError, TypeError, ValueError, RuntimeError):
        meta_ok = False
    if meta_ok and not all(key in content for key in ("combiner", "threshold", "latent_memory", "candidates")):
        raise ValueError(f"{path}: a model of an older seamountae, without the evidence its scores need; "
                         "train it again with `seamountae tile` and `seamountae train`")
    if not meta_ok:
        raise ValueError(f"{path}: weights or metadata do not match the recorded architecture; the file is damaged, retrain it")
    model.eval()
    meta = {k: v for k, v in content.items() if k not in ("state_dict",)}
    return model, meta


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
