"""Shared fixtures: a tiny synthetic grid and catalogue, and the artifacts of the pipeline run on it once.

Sizes are chosen for speed: a 120 x 160 one-minute grid (~220 x 280 km), 24 km patches resampled to
16 px, 3 training epochs. The session-scoped artifacts are built through the command line (so every
test that uses them also exercises tile → train → score → detect) and must be treated as read-only:
a test that changes a file copies it first.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from seamountae.catalogue import write_csv
from seamountae.cli import cli
from seamountae.grid import write_grid
from seamountae.outputs import read_netcdf
from seamountae.synth import synthesize

GRID_SHAPE = (120, 160)
SEED = 1
N_SEAMOUNTS = 8
PATCH_KM = 24.0
PATCH_PX = 16
EPOCHS = 3
TILE_OPTIONS = ["--patch-km", str(PATCH_KM), "--patch-px", str(PATCH_PX)]
TRAIN_OPTIONS = ["--epochs", str(EPOCHS), "--seed", "0", "--device", "cpu"]

# The models here are tiny: one thread is as fast as two, and immune to the 100-fold slowdown of
# torch's spinning worker threads when other processes share the cores.
torch.set_num_threads(1)


def model_meta(patch_km: float, patch_px: int, calibration_errors=(0.1, 0.2, 0.3), latent: int = 4) -> dict:
    """Complete metadata for a model made in a test (untrained): what `train` records, with simple values."""
    return {"patch_km": float(patch_km), "patch_px": int(patch_px), "normalisation": "plane-removed, std-scaled",
            "calibration": {"errors": list(calibration_errors), "source": "a test", "n_seamounts": 2},
            "candidates": {"patch_km": float(patch_km), "window_km": [float(patch_km) / 2, 2.0 * float(patch_km)],
                           "radius_ratio": 6.0, "min_height_m": 300.0, "separation_km": 6.0, "missing_buffer_km": 5.0},
            "combiner": {"names": ["log_height"], "mean": [6.5], "scale": [0.5], "coef": [1.0], "intercept": 0.0},
            "threshold": {"value": 0.5, "rule": "a test"},
            "latent_memory": {"mean": [0.0] * latent, "precision": np.eye(latent).tolist()}}


def run_cli(args, catch_exceptions: bool = False):
    """Invoke `seamountae ARGS` in-process; return click's Result (stdout and stderr kept apart)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=catch_exceptions)


def ok(result):
    """Assert a command succeeded, showing its stderr if not; return the result."""
    assert result.exit_code == 0, f"exit {result.exit_code}\nstderr: {result.stderr}\nexception: {result.exception!r}"
    return result


def state_bytes(model) -> bytes:
    """A model's weights as bytes: equal bytes, identical models."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getvalue()


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def synthetic():
    """(grid, truth): the canonical synthetic grid and its planted seamounts, beside volcanic ridges
    (background summits, which calibration needs besides seamounts)."""
    return synthesize(seed=SEED, shape=GRID_SHAPE, n_seamounts=N_SEAMOUNTS, confounders=("volcanic_ridge",))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory, synthetic):
    """A folder with grid.nc, grid.tif and truth.csv of the synthetic grid."""
    folder = tmp_path_factory.mktemp("data")
    grid, truth = synthetic
    write_grid(grid, folder / "grid.nc")
    write_grid(grid, folder / "grid.tif")
    write_csv(truth, folder / "truth.csv")
    return folder


@pytest.fixture(scope="session")
def grid_file(data_dir):
    return data_dir / "grid.nc"


@pytest.fixture(scope="session")
def catalogue_file(data_dir):
    return data_dir / "truth.csv"


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, grid_file, catalogue_file):
    """The pipeline run once through the CLI: {"patches", "model", "score", "detections"} → path."""
    folder = tmp_path_factory.mktemp("pipeline")
    paths = {name: folder / f"{name}{ext}" for name, ext in
             (("patches", ".nc"), ("model", ".pt"), ("score", ".nc"), ("detections", ".nc"))}
    ok(run_cli(["tile", grid_file, "--catalogue", catalogue_file, *TILE_OPTIONS, "-o", paths["patches"]]))
    ok(run_cli(["train", paths["patches"], *TRAIN_OPTIONS, "-o", paths["model"]]))
    ok(run_cli(["score", grid_file, "--model", paths["model"], "--device", "cpu", "-o", paths["score"]]))
    ok(run_cli(["detect", paths["score"], "-o", paths["detections"]]))
    return paths


@pytest.fixture(scope="session")
def patches_file(artifacts):
    return artifacts["patches"]


@pytest.fixture(scope="session")
def patches(patches_file):
    """The patches file's dataset (read-only)."""
    return read_netcdf(patches_file, "patches", "tile")


@pytest.fixture(scope="session")
def model_file(artifacts):
    return artifacts["model"]


@pytest.fixture(scope="session")
def score_file(artifacts):
    return artifacts["score"]


@pytest.fixture(scope="session")
def detections_file(artifacts):
    return artifacts["detections"]


@pytest.fixture
def copy_of(tmp_path):
    """copy_of(path) → a private copy of a shared file in this test's tmp_path."""

    def _copy(path, name=None):
        target = tmp_path / (name or Path(path).name)
        shutil.copyfile(path, target)
        return target

    return _copy
