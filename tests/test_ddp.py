"""Multi-process training under torchrun (DistributedDataParallel, gloo on the CPU).

Each launch is a real `python -m torch.distributed.run --standalone --nproc_per_node=2` subprocess
(the venv's torchrun) on the session's patches file, a few seconds each.

Agreement with a single process: DDP all-reduces the gradient of each process's half of a batch,
scaled so that their average is the whole batch's mean gradient; the batches, the augmentation and
the learning-rate schedule are those of one process. So the models differ only by float summation
order. Measured (3 epochs, seeds 0-4, this test's data, `seamountae train` vs the same under torchrun
with 2 processes): weights within 6e-8, per-patch reconstruction errors within 1.2e-7 of their
median, calibration errors within 1.2e-7, loss history within 2e-7; on the conftest grid the error
maps within 2.4e-7 (relative) and the score maps identical for 4 seeds, one cell one calibration
step (1/55) apart for the fifth. The tolerances below are ~100 times the measured differences,
and conformal scores may differ by one calibration step, where an error sits on a calibration value.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from conftest import EPOCHS
from seamountae import distributed
from seamountae.errors import SeamountaeError
from seamountae.patches import normalise
from seamountae.calibration import conformal_score
from seamountae.model import read_model
from seamountae.training import read_checkpoint, reconstruction_errors, train

RELATIVE = 1e-5  # errors and weights; measured at most 1.2e-7 (see above)
TRAIN = ["--epochs", str(EPOCHS), "--seed", "0", "--device", "cpu"]  # = conftest's TRAIN_OPTIONS (model_file)


def torchrun(args, cwd, timeout=120):
    """Run `torchrun --standalone --nproc_per_node=2 ARGS` in cwd; the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR")}
    env["OMP_NUM_THREADS"] = "1"  # torchrun sets it too (with a warning); 2 cores, 2 processes
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def succeeded(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstderr: {result.stderr[-4000:]}"
    return result


def patch_errors(model, patches):
    x_np, valid_np, _ = normalise(patches["patch"].values)
    return reconstruction_errors(model, torch.from_numpy(x_np)[:, None],
                                 torch.from_numpy(valid_np.astype(np.float32))[:, None])


def assert_close_models(ddp_path, single_path, patches):
    (ddp, meta_d), (single, meta_s) = read_model(ddp_path), read_model(single_path)
    for name, value in single.state_dict().items():
        torch.testing.assert_close(ddp.state_dict()[name], value, rtol=0, atol=RELATIVE)
    e_d, e_s = patch_errors(ddp, patches), patch_errors(single, patches)
    assert np.abs(e_d - e_s).max() <= RELATIVE * np.median(e_s)
    cal_d, cal_s = np.array(meta_d["calibration"]["errors"]["fp32"]), np.array(meta_s["calibration"]["errors"]["fp32"])
    assert len(cal_d) == len(cal_s) and np.abs(cal_d - cal_s).max() <= RELATIVE * np.median(cal_s)
    np.testing.assert_allclose(meta_d["training"]["loss_history"], meta_s["training"]["loss_history"], rtol=RELATIVE)
    step = 1 / (len(cal_s) + 1)  # one calibration error more or less at or above a patch's error
    assert np.abs(conformal_score(e_d, cal_d) - conformal_score(e_s, cal_s)).max() <= step + 1e-6
    return meta_d, meta_s


def test_torchrun_training_matches_single_process(patches_file, model_file, patches, tmp_path):
    # model_file: `seamountae train` (one process) on the same patches with the same options.
    result = succeeded(torchrun(["-m", "seamountae", "train", patches_file, "-o", "ddp.pt", *TRAIN], tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp.pt"]  # no checkpoint, no temporary file
    assert result.stderr.count("trained on") == 1  # the summary, from rank 0 alone
    meta_d, meta_s = assert_close_models(tmp_path / "ddp.pt", model_file, patches)
    assert meta_d["training"]["world_size"] == 2 and meta_s["training"]["world_size"] == 1
    assert meta_d["training"]["n_patches"] == meta_s["training"]["n_patches"]


def test_torchrun_outlier_exposure_matches_single_process(patches_file, patches, tmp_path):
    """The background patches ride in the same forward pass, shared between the processes like the batch."""
    options = [*TRAIN, "--outlier-weight", "1"]
    succeeded(torchrun(["-m", "seamountae", "train", patches_file, "-o", "ddp.pt", *options], tmp_path))
    single = subprocess.run([sys.executable, "-m", "seamountae", "train", str(patches_file), "-o", "single.pt", *options],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    succeeded(single)
    meta_d, meta_s = assert_close_models(tmp_path / "ddp.pt", tmp_path / "single.pt", patches)
    assert meta_d["training"]["outlier_weight"] == meta_s["training"]["outlier_weight"] == 1.0


RESUME_SCRIPT = """
import sys
from seamountae.config import resolve
from seamountae.outputs import read_netcdf
from seamountae.training import train

class Stop(Exception):
    pass

def stop(epoch, loss):
    if epoch == 1:
        raise Stop

params = resolve("train", None, {{"epochs": {epochs}, "seed": 0, "device": "cpu"}})
try:
    train(read_netcdf(sys.argv[1], "patches", "tile"), progress=False, checkpoint="model.pt.ckpt", on_epoch=stop,
          **params)
except Stop:
    pass
"""


def test_torchrun_checkpoint_then_resume(patches_file, model_file, patches, tmp_path):
    """Rank 0 writes the checkpoint (interrupted after epoch 1); `--resume` under torchrun finishes it."""
    (tmp_path / "stop.py").write_text(textwrap.dedent(RESUME_SCRIPT.format(epochs=EPOCHS)))
    succeeded(torchrun(["stop.py", patches_file], tmp_path))
    state = read_checkpoint(tmp_path / "model.pt.ckpt")
    assert state["epoch"] == 1 and state["world_size"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt.ckpt", "stop.py"]

    result = succeeded(torchrun(["-m", "seamountae", "train", patches_file, "-o", "model.pt", *TRAIN, "--resume", "-v"],
                                tmp_path))
    assert result.stderr.count("resuming after epoch 1") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "stop.py"]  # checkpoint deleted
    assert_close_models(tmp_path / "model.pt", model_file, patches)


def test_torchrun_divergence_stops_every_process(patches_file, tmp_path):
    """A NaN loss is seen by all processes at the same step (the loss is all-reduced): no hang."""
    result = torchrun(["-m", "seamountae", "train", patches_file, "-o", "model.pt", *TRAIN, "--learning-rate", "1e30"],
                      tmp_path)
    assert result.returncode != 0
    assert result.stderr.count("seamountae: error: training diverged in epoch 1") == 2  # each process says why
    assert not (tmp_path / "model.pt").exists()


LAUNCH = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "notaport"}


def test_launch_detection(monkeypatch):
    for name in LAUNCH:
        monkeypatch.delenv(name, raising=False)
    assert not distributed.launched() and distributed.world_size() == 1 and distributed.rank() == 0
    for name, value in LAUNCH.items():
        monkeypatch.setenv(name, value)
    assert distributed.launched() and distributed.world_size() == 2
    monkeypatch.setenv("WORLD_SIZE", "1")  # torchrun with one process: the plain single-process path
    assert not distributed.launched()


def test_failed_start_is_one_line(monkeypatch, patches):
    for name, value in LAUNCH.items():
        monkeypatch.setenv(name, value)
    match = r"^could not start distributed training with gloo .*notaport.*; check"
    with pytest.raises(SeamountaeError, match=match) as err:
        train(patches, epochs=1, device="cpu", progress=False)
    assert "\n" not in str(err.value)


def test_cuda_launch_without_cuda_or_nccl_is_one_line(monkeypatch):
    for name, value in LAUNCH.items():
        monkeypatch.setenv(name, value)
    if torch.cuda.is_available() and torch.distributed.is_nccl_available():
        pytest.skip("this machine has CUDA and NCCL")
    with pytest.raises(SeamountaeError, match=r"needs NCCL.*--device cpu"):
        distributed.init(torch.device("cuda", 0))
    with pytest.raises(SeamountaeError, match=r"--device cuda:1: names one GPU for all 2 processes"):
        distributed.device_for(torch.device("cuda", 1))
