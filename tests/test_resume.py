"""Checkpoints: training interrupted and resumed gives the model an uninterrupted run gives; NaN stops it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import warnings

import pytest
import torch

from conftest import file_digest, ok, run_cli, state_bytes
from seamountae.config import default
from seamountae.errors import SeamountaeError
from seamountae.model import read_model
from seamountae.training import checkpoint_path, read_checkpoint, train

FAST = {"epochs": 4, "device": "cpu", "latent": 4, "width": 4, "batch_size": 64, "progress": False, "seed": 2}


class Stop(Exception):
    pass


def stop_after(k):
    def on_epoch(epoch, loss):
        if epoch == k:
            raise Stop

    return on_epoch


@pytest.fixture(scope="module")
def straight(patches):
    return train(patches, **FAST)


@pytest.mark.parametrize("k", [1, 3])
def test_interrupted_then_resumed_equals_uninterrupted(k, patches, straight, tmp_path):
    checkpoint = tmp_path / "model.pt.ckpt"
    with pytest.raises(Stop):
        train(patches, **FAST, checkpoint=checkpoint, on_epoch=stop_after(k))
    assert read_checkpoint(checkpoint)["epoch"] == k
    model, meta = train(patches, **FAST, checkpoint=checkpoint, resume=True)
    assert state_bytes(model) == state_bytes(straight[0])
    assert meta == straight[1]  # loss history, calibration errors: every number


def test_checkpoint_holds_only_tensors_and_plain_types(patches, tmp_path):
    checkpoint = tmp_path / "model.pt.ckpt"
    with pytest.raises(Stop):
        train(patches, **FAST, checkpoint=checkpoint, on_epoch=stop_after(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        content = torch.load(checkpoint, weights_only=True)  # the safe loader accepts it

    def plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, (str, int)) and plain(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, (torch.Tensor, str, int, float, bool))

    assert plain(content)
    assert content["epoch"] == 2 and len(content["history"]) == 2
    assert isinstance(content["shuffler"], torch.Tensor) and isinstance(content["torch_rng"], torch.Tensor)


def test_resume_without_a_checkpoint_starts_afresh(patches, straight, tmp_path, caplog):
    model, _ = train(patches, **FAST, checkpoint=tmp_path / "absent.ckpt", resume=True)
    assert state_bytes(model) == state_bytes(straight[0])
    assert "no checkpoint to resume from" in caplog.text


@pytest.mark.parametrize("change, words", [({"epochs": 5}, "epochs = 4, not 5"), ({"seed": 3}, "seed = 2, not 3"),
                                           ({"learning_rate": 0.01}, "learning_rate")])
def test_resume_refuses_a_checkpoint_of_other_parameters(change, words, patches, tmp_path):
    checkpoint = tmp_path / "model.pt.ckpt"
    with pytest.raises(Stop):
        train(patches, **FAST, checkpoint=checkpoint, on_epoch=stop_after(1))
    with pytest.raises(SeamountaeError, match=f"cannot resume: it was made with {words}.*without --resume"):
        train(patches, **{**FAST, **change}, checkpoint=checkpoint, resume=True)


def test_resume_refuses_a_checkpoint_of_other_patches(patches, tmp_path):
    checkpoint = tmp_path / "model.pt.ckpt"
    with pytest.raises(Stop):
        train(patches, **FAST, checkpoint=checkpoint, on_epoch=stop_after(1))
    other = patches.copy(deep=True)
    other["patch"].values[0, 0, 0] += 1.0
    with pytest.raises(SeamountaeError, match="made from other patches"):
        train(other, **FAST, checkpoint=checkpoint, resume=True)


def test_damaged_checkpoint_is_refused(patches, tmp_path):
    checkpoint = tmp_path / "model.pt.ckpt"
    checkpoint.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SeamountaeError, match="not a usable seamountae checkpoint.*delete it"):
        train(patches, **FAST, checkpoint=checkpoint, resume=True)


# -------------------------------------------------------------------------------------------- CLI


TRAIN = ["--epochs", "4", "--seed", "2", "--device", "cpu", "--latent", "4", "--threads", "1"]


def test_cli_checkpoint_is_deleted_after_success(patches_file, tmp_path):
    ok(run_cli(["train", patches_file, *TRAIN, "-o", tmp_path / "m.pt"]))
    assert (tmp_path / "m.pt").exists() and not checkpoint_path(tmp_path / "m.pt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


# A real `seamountae` process whose optimiser steps are slowed down, so that it is surely still
# training when the signal comes.
SLOW_CLI = """
import sys, time, torch
step = torch.optim.AdamW.step
torch.optim.AdamW.step = lambda self, *a, **k: (time.sleep(0.02), step(self, *a, **k))[1]
sys.argv[0] = "seamountae"
from seamountae.cli import main
main()
"""


def test_cli_resume_after_sigint_gives_the_uninterrupted_model(patches_file, tmp_path):
    """A real process interrupted (SIGINT) once it has a checkpoint, then `train --resume` in-process."""
    output = tmp_path / "model.pt"
    epochs = ["--epochs", "12"]
    args = [sys.executable, "-c", SLOW_CLI, "train", str(patches_file), *TRAIN, *epochs, "-o", str(output)]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    checkpoint = checkpoint_path(output)
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert checkpoint.exists(), "no checkpoint appeared"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    assert not output.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    done = read_checkpoint(checkpoint)["epoch"]
    total = 12 * (default("train", "folds") + 1)  # every calibration fold, then the final model
    assert 1 <= done < total
    result = ok(run_cli(["train", patches_file, *TRAIN, *epochs, "-o", output, "--resume", "-v"]))
    assert f"resuming after epoch {done} of {total}" in result.stderr
    assert not checkpoint.exists()
    ok(run_cli(["train", patches_file, *TRAIN, *epochs, "-o", tmp_path / "straight.pt"]))
    (m1, meta1), (m2, meta2) = read_model(output), read_model(tmp_path / "straight.pt")
    assert state_bytes(m1) == state_bytes(m2)
    assert meta1["calibration"] == meta2["calibration"]
    assert meta1["training"] == meta2["training"]


def test_cli_resume_with_other_parameters_fails_cleanly(patches, patches_file, tmp_path):
    output = tmp_path / "model.pt"
    with pytest.raises(Stop):
        train(patches, epochs=4, seed=2, device="cpu", latent=4, progress=False, checkpoint=checkpoint_path(output),
              on_epoch=stop_after(1))
    before = file_digest(checkpoint_path(output))
    result = run_cli(["train", patches_file, *TRAIN, "--learning-rate", "0.01", "-o", output, "--resume"],
                     catch_exceptions=True)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "cannot resume" in result.stderr and "learning_rate" in result.stderr
    assert file_digest(checkpoint_path(output)) == before and not output.exists()


def test_nan_loss_stops_training_with_a_clear_message(patches_file, tmp_path):
    output = tmp_path / "model.pt"
    result = run_cli(["train", patches_file, *TRAIN, "--learning-rate", "1e12", "-o", output], catch_exceptions=True)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "training diverged in epoch" in lines[0] and "--learning-rate" in lines[0], result.stderr
    assert not output.exists()


def test_run_resumes_an_interrupted_training(tmp_path, data_dir, monkeypatch):
    """`seamountae run` after an interruption during training: continues from the checkpoint."""
    from seamountae import training
    from test_run import config_text, make_project

    config = make_project(tmp_path, data_dir, config_text(reference=False))
    real_train = training.train

    def stopping(*args, on_epoch=None, **kwargs):
        def hook(epoch, loss):
            if epoch == 2:
                raise KeyboardInterrupt

        return real_train(*args, on_epoch=hook, **kwargs)

    monkeypatch.setattr(training, "train", stopping)
    stopped = run_cli(["run", config], catch_exceptions=True)
    assert stopped.exit_code == 130
    checkpoint = tmp_path / "out" / "model.pt.ckpt"
    assert read_checkpoint(checkpoint)["epoch"] == 2 and not (tmp_path / "out" / "model.pt").exists()
    monkeypatch.setattr(training, "train", real_train)
    result = ok(run_cli(["run", config, "-v"]))
    assert "resuming after epoch 2" in result.stderr
    assert not checkpoint.exists() and (tmp_path / "out" / "seamounts.geojson").exists()
