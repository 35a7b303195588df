"""The autoencoder and its model file: shapes, round trip, loading without running code, load errors."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from conftest import model_meta
from seamountae.errors import SeamountaeError
from seamountae.model import ARTIFACT_FORMAT, ARTIFACT_VERSION, PatchAutoencoder, artifact, load_artifact, masked_error
from seamountae.model import read_model, save_model


def small_meta():
    return model_meta(24.0, 16)


@pytest.mark.parametrize("patch_px", [8, 16, 32])
def test_autoencoder_reconstructs_the_input_shape(patch_px):
    model = PatchAutoencoder(patch_px=patch_px, latent=4, width=4)
    x = torch.randn(5, 1, patch_px, patch_px)
    assert model(x).shape == x.shape
    assert model.hyperparameters() == {"patch_px": patch_px, "latent": 4, "width": 4}


def test_autoencoder_bottleneck_is_latent_numbers():
    model = PatchAutoencoder(patch_px=16, latent=5, width=4)
    assert model.encoder(torch.zeros(2, 1, 16, 16)).shape == (2, 5)


@pytest.mark.parametrize("patch_px", [12, 20])
def test_autoencoder_rejects_sizes_not_multiple_of_8(patch_px):
    with pytest.raises(ValueError, match="multiple of 8"):
        PatchAutoencoder(patch_px=patch_px)


def test_masked_error_ignores_missing_pixels():
    target = torch.zeros(2, 1, 4, 4)
    recon = torch.zeros(2, 1, 4, 4)
    recon[0, 0, 0, 0] = 10.0  # wrong only where the pixel is missing
    recon[1, 0, 0, 0] = 2.0  # wrong where it is valid
    valid = torch.ones(2, 1, 4, 4)
    valid[0, 0, 0, 0] = 0
    error = masked_error(recon, target, valid)
    assert error[0] == 0
    assert error[1] == pytest.approx(4.0 / 16)


def test_artifact_round_trip(tmp_path):
    torch.manual_seed(0)
    model = PatchAutoencoder(patch_px=16, latent=6, width=4)
    path = tmp_path / "model.pt"
    save_model(model, small_meta(), path)
    loaded, meta = read_model(path)
    assert loaded.hyperparameters() == model.hyperparameters()
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
    x = torch.randn(3, 1, 16, 16)
    model.eval()
    assert torch.equal(loaded(x), model(x))
    assert not loaded.training
    assert meta["patch_km"] == 24.0 and meta["patch_px"] == 16
    assert meta["calibration"]["errors"] == [0.1, 0.2, 0.3]
    assert meta["format"] == ARTIFACT_FORMAT and meta["format_version"] == ARTIFACT_VERSION
    assert "state_dict" not in meta


def test_trained_model_file_loads_with_weights_only(model_file):
    """The file written by `seamountae train` is plain data: torch's safe loader reads it directly."""
    content = torch.load(model_file, map_location="cpu", weights_only=True)
    assert content["format"] == ARTIFACT_FORMAT
    assert set(content["calibration"]["errors"]) == {"fp32", "bf16", "fp16"}  # every precision runs on a CPU
    assert all(errors == sorted(errors) for errors in content["calibration"]["errors"].values())
    assert "provenance" in content and content["provenance"]["inputs"]["patches"]["sha256"]
    model, meta = read_model(model_file)
    assert meta["patch_px"] == model.patch_px == 16


class _Marker:
    """A pickle that, if unpickled by a full unpickler, creates a file."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


class _System:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("how", ["torch.save inside artifact", "torch.save bare", "plain pickle"])
@pytest.mark.parametrize("payload", [_Marker, _System])
def test_model_file_that_would_run_code_is_refused_without_running_it(tmp_path, how, payload):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    evil = payload(marker)
    if how == "torch.save inside artifact":
        content = artifact(PatchAutoencoder(patch_px=8, latent=2, width=2), **small_meta())
        content["calibration"]["hook"] = evil
        torch.save(content, path)
    elif how == "torch.save bare":
        torch.save(evil, path)
    else:
        path.write_bytes(pickle.dumps(evil, protocol=4))
    with pytest.raises(SeamountaeError) as info:
        read_model(path)
    assert not marker.exists()
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_model_of_an_older_version_is_refused(tmp_path):
    """A model trained before the evidence existed cannot score: say so, and how to get a new one."""
    path = tmp_path / "old.pt"
    meta = {k: v for k, v in small_meta().items() if k not in ("combiner", "threshold", "latent_memory", "candidates")}
    save_model(PatchAutoencoder(patch_px=16, latent=4, width=4), meta, path)
    with pytest.raises(SeamountaeError, match="older seamountae.*train it again"):
        read_model(path)


def test_missing_model_file(tmp_path):
    with pytest.raises(SeamountaeError, match="no such model file"):
        read_model(tmp_path / "absent.pt")


def test_truncated_model_file(tmp_path, model_file):
    path = tmp_path / "cut.pt"
    path.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    with pytest.raises(SeamountaeError, match="not a seamountae model file") as info:
        read_model(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("content", [b"", b"hello, I am a text file\n", b"\x89HDF\r\n\x1a\n" + bytes(200)])
def test_foreign_file_is_not_a_model(tmp_path, content):
    path = tmp_path / "foreign.pt"
    path.write_bytes(content)
    with pytest.raises(SeamountaeError, match="not a seamountae model file"):
        read_model(path)


def test_torch_file_of_something_else_is_not_a_model(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(PatchAutoencoder(patch_px=8).state_dict(), path)  # a bare state dict: no metadata
    with pytest.raises(SeamountaeError, match="not a seamountae model file"):
        read_model(path)


def test_newer_format_asks_for_an_upgrade(tmp_path):
    content = artifact(PatchAutoencoder(patch_px=8, latent=2, width=2), **small_meta())
    content["format_version"] = ARTIFACT_VERSION + 1
    torch.save(content, tmp_path / "new.pt")
    with pytest.raises(SeamountaeError, match="upgrade seamountae"):
        read_model(tmp_path / "new.pt")


@pytest.mark.parametrize("damage", ["weights", "architecture", "calibration", "patch_px"])
def test_inconsistent_model_file_is_damaged(tmp_path, damage):
    content = artifact(PatchAutoencoder(patch_px=16, latent=2, width=2), **small_meta())
    if damage == "weights":
        content["state_dict"]["encoder.0.weight"] = torch.zeros(3, 3)
    elif damage == "architecture":
        content["architecture"]["patch_px"] = 12
    elif damage == "calibration":
        del content["calibration"]
    else:
        content["patch_px"] = 32
    torch.save(content, tmp_path / "bad.pt")
    with pytest.raises(SeamountaeError, match="damaged"):
        read_model(tmp_path / "bad.pt")


def test_load_artifact_raises_value_error_for_library_users(tmp_path):
    """model.py imports nothing of the project: its loader reports bad files as ValueError."""
    (tmp_path / "x.pt").write_text("no")
    with pytest.raises(ValueError):
        load_artifact(tmp_path / "x.pt")


def test_inference_form_computes_the_same_function():
    """Transposed convolutions rewritten as convolution + pixel shuffle: same outputs to float rounding."""
    torch.manual_seed(3)
    for patch_px, width in ((16, 4), (32, 16)):
        model = PatchAutoencoder(patch_px=patch_px, latent=8, width=width).eval()
        for p in model.parameters():  # weights of a trained model's scale, not just the initial ones
            p.data.add_(torch.randn_like(p) * 0.1)
        x = torch.randn(37, 1, patch_px, patch_px)
        with torch.inference_mode():
            expected, fast = model(x), model.for_inference()(x)
        assert fast.shape == expected.shape
        assert float((fast - expected).abs().max()) <= 1e-5 * float(expected.abs().max())
