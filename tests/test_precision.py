"""Tests for the forward pass's precision: what `auto` picks, that the model is calibrated at each
precision by the code that scores, and that a score file says which precision made it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from conftest import model_meta, ok, run_cli
from seamountae import model as model_module
from seamountae.errors import SeamountaeError
from seamountae.model import PatchAutoencoder, resolve_precision
from seamountae.runner import PatchScorer, score_precision
from seamountae.calibration import conformal_score
from seamountae.model import read_model
from seamountae.training import map_errors

CPU = torch.device("cpu")


@pytest.mark.parametrize("has_bf16, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_is_bf16_on_a_cpu_with_bf16_instructions_else_fp32(monkeypatch, has_bf16, expected):
    monkeypatch.setattr(model_module, "native_bf16", lambda device: has_bf16)
    assert resolve_precision("auto", CPU) == expected
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"  # no GPU needed to decide
    assert resolve_precision("fp16", CPU) == "fp16"
    with pytest.raises(ValueError, match="fp64.*use auto, fp32, bf16, fp16"):
        resolve_precision("fp64", CPU)


def test_a_model_calibrated_only_in_fp32_scores_in_fp32(monkeypatch):
    monkeypatch.setattr(model_module, "native_bf16", lambda device: True)
    meta = model_meta(24.0, 16)  # calibration errors as one list: a model trained before precisions
    assert score_precision(meta, "auto", "cpu") == "fp32"
    assert score_precision(meta, "fp32", "cpu") == "fp32"
    with pytest.raises(SeamountaeError, match=r"old\.pt has no bf16 calibration.*--precision fp32.*train"):
        score_precision(meta, "bf16", "cpu", "old.pt")
    calibrated = {**meta, "calibration": {**meta["calibration"], "errors": {"fp32": [0.1], "bf16": [0.1]}}}
    assert score_precision(calibrated, "auto", "cpu") == "bf16"


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_every_precision_runs_on_the_cpu_and_stays_near_fp32(precision):
    torch.manual_seed(0)
    model = PatchAutoencoder(patch_px=16, latent=4, width=4).eval()
    rng = np.random.default_rng(0)
    patches = (rng.normal(size=(70, 16, 16)).cumsum(1).cumsum(2) * 10 - 3000).astype(np.float32)
    errors = map_errors(model, CPU, patches, precision)
    reference = map_errors(model, CPU, patches, "fp32")
    assert np.isfinite(errors).all() and errors.shape == (70,)
    np.testing.assert_allclose(errors, reference, rtol=0.03)
    if precision != "fp32":
        assert not np.array_equal(errors, reference)  # really computed at that precision


def test_calibration_and_scoring_agree_at_each_precision(model_file, patches):
    """The calibration at precision P is the map's own runner at P on the training seamounts' own
    patches: the final model scoring those patches at P ranks them within that calibration as
    it ranks them at fp32 within the fp32 one (the model differs from the fold models, so not
    bitwise), and each precision's calibration is that precision's, not a copy of fp32's."""
    model, meta = read_model(model_file)
    calibration = meta["calibration"]["errors"]
    assert set(calibration) == {"fp32", "bf16", "fp16"}
    own = patches["candidate_patch"].values[patches["candidate_label"].values == 1][:, 0]
    scores = {}
    for precision, errors in calibration.items():
        assert len(errors) == len(calibration["fp32"])
        scorer = PatchScorer(model, "cpu", precision=precision)
        assert scorer.precision == precision
        mapped = scorer(torch.from_numpy(own))["error"].numpy()
        np.testing.assert_array_equal(mapped, map_errors(model, CPU, own, precision))  # one runner
        scores[precision] = conformal_score(mapped, errors)
    step = 1 / (len(calibration["fp32"]) + 1)
    for precision in ("bf16", "fp16"):
        assert np.abs(scores[precision] - scores["fp32"]).max() <= 2 * step + 1e-6


def test_score_file_records_its_precision_and_uses_its_calibration(grid_file, model_file, tmp_path):
    _, meta = read_model(model_file)
    for precision in ("fp32", "bf16"):
        out = tmp_path / f"{precision}.nc"
        ok(run_cli(["score", grid_file, "--model", model_file, "--device", "cpu", "--precision", precision, "-o", out]))
        with xr.open_dataset(out) as ds:
            assert ds.attrs["precision"] == precision
            error, score = ds["error"].values, ds["score"].values
        np.testing.assert_array_equal(score, conformal_score(error, meta["calibration"]["errors"][precision]))


def test_precision_by_name_that_the_model_lacks_is_one_line(grid_file, tmp_path):
    torch.manual_seed(0)
    old = tmp_path / "old.pt"
    torch.save(model_module.artifact(PatchAutoencoder(16, 4, 4), **model_meta(24.0, 16)), old)
    result = run_cli(["score", grid_file, "--model", old, "--device", "cpu", "--precision", "fp16",
                      "-o", tmp_path / "s.nc"], catch_exceptions=True)
    assert result.exit_code != 0 and not (tmp_path / "s.nc").exists()
    message = result.stderr.strip()
    assert "\n" not in message and "old.pt has no fp16 calibration" in message and "--precision fp32" in message
    bad = run_cli(["score", grid_file, "--model", old, "--precision", "fp64", "-o", tmp_path / "s.nc"],
                  catch_exceptions=True)
    assert bad.exit_code == 2 and "fp64" in bad.stderr


def test_parts_where_auto_meant_other_precisions_are_not_merged(grid_file, model_file, tmp_path, monkeypatch):
    parts = []
    for i, has_bf16 in enumerate((False, True)):  # array tasks on nodes with other CPUs
        monkeypatch.setattr(model_module, "native_bf16", lambda device, has_bf16=has_bf16: has_bf16)
        parts.append(tmp_path / f"part{i}.nc")
        ok(run_cli(["score", grid_file, "--model", model_file, "--device", "cpu", "--tiles", 2, "--tile-index", i,
                    "-o", parts[-1]]))
    result = run_cli(["merge", *parts, "-o", tmp_path / "merged.nc"], catch_exceptions=True)
    assert result.exit_code != 0 and "same --precision" in result.stderr
    assert not (tmp_path / "merged.nc").exists()
