"""Training: reproducible models, calibration on whole held-out seamounts, the conformal score, divergence."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import TRAIN_OPTIONS, ok, run_cli, state_bytes
from seamountae.errors import SeamountaeError
from seamountae.model import masked_error
from seamountae.patches import normalise
from seamountae.training import conformal_score, dihedral, read_model, split_holdout, train

FAST = {"epochs": 2, "device": "cpu", "latent": 4, "width": 4, "batch_size": 64, "progress": False}


def test_same_seed_gives_identical_model(patches):
    first, meta1 = train(patches, seed=3, **FAST)
    second, meta2 = train(patches, seed=3, **FAST)
    assert state_bytes(first) == state_bytes(second)
    assert meta1["calibration"] == meta2["calibration"]
    assert meta1["training"]["loss_history"] == meta2["training"]["loss_history"]


def test_different_seed_gives_a_different_model(patches):
    first, _ = train(patches, seed=3, **FAST)
    second, _ = train(patches, seed=4, **FAST)
    assert state_bytes(first) != state_bytes(second)


def test_cli_train_is_reproducible(tmp_path, patches_file, model_file):
    """`seamountae train` twice with the same seed: the same weights and calibration."""
    again = tmp_path / "again.pt"
    ok(run_cli(["train", patches_file, *TRAIN_OPTIONS, "-o", again]))
    (m1, meta1), (m2, meta2) = read_model(model_file), read_model(again)
    assert state_bytes(m1) == state_bytes(m2)
    assert meta1["calibration"] == meta2["calibration"]


def test_training_lowers_the_loss(patches):
    _, meta = train(patches, seed=0, **{**FAST, "epochs": 6, "width": 8, "latent": 8})
    history = meta["training"]["loss_history"]
    assert len(history) == 6 and history[-1] < history[0]


# --------------------------------------------------------------------------------- held-out split


def test_split_holds_out_whole_seamounts():
    groups = np.repeat(np.arange(10), 27)
    held = split_holdout(groups, 0.2, seed=0)
    for g in range(10):
        assert len(set(held[groups == g])) == 1  # all of a seamount's patches, or none
    assert len(np.unique(groups[held])) == 2


@given(n_groups=st.integers(5, 60), per_group=st.integers(1, 5), fraction=st.floats(0.05, 0.6), seed=st.integers(0, 10**6))
@settings(max_examples=60, deadline=None)
def test_split_property(n_groups, per_group, fraction, seed):
    rng = np.random.default_rng(seed)
    groups = rng.permutation(np.repeat(rng.choice(10**6, n_groups, replace=False), per_group))
    held = split_holdout(groups, fraction, seed)
    held_groups, kept_groups = set(groups[held]), set(groups[~held])
    assert not held_groups & kept_groups
    assert len(held_groups) == int(round(fraction * n_groups))
    assert np.array_equal(held, split_holdout(groups, fraction, seed))  # reproducible


def test_split_holds_nothing_out_of_fewer_than_five_seamounts():
    assert not split_holdout(np.repeat(np.arange(4), 9), 0.5, seed=0).any()


def test_calibration_uses_only_held_out_seamounts(patches):
    model, meta = train(patches, seed=0, **FAST)
    held = split_holdout(patches["seamount"].values, 0.2, seed=0)
    n_total = len(np.unique(patches["seamount"].values))
    cal, fit = meta["calibration"], meta["training"]
    assert cal["source"] == "held-out seamounts"
    assert cal["n_seamounts"] == len(np.unique(patches["seamount"].values[held])) >= 1
    assert cal["n_seamounts"] + fit["n_seamounts"] == n_total
    assert fit["n_patches"] == int((~held).sum())
    # The calibration errors are the model's errors on the held-out patches, not on those it was fitted to.
    x, valid, _ = normalise(patches["patch"].values[held])
    with torch.inference_mode():
        xt, vt = torch.from_numpy(x)[:, None], torch.from_numpy(valid.astype(np.float32))[:, None]
        expected = masked_error(model(xt), xt, vt).numpy()
    np.testing.assert_allclose(cal["errors"], np.sort(expected), rtol=1e-5)


def test_too_few_seamounts_calibrates_on_training_patches_with_a_warning(patches, caplog):
    few = patches.isel(sample=np.flatnonzero(patches["seamount"].values < 3))
    with caplog.at_level(logging.WARNING, logger="seamountae"):
        _, meta = train(few, seed=0, **FAST)
    assert meta["calibration"]["n_seamounts"] == 0
    assert "training patches" in meta["calibration"]["source"]
    assert len(meta["calibration"]["errors"]) == few.sizes["sample"]
    assert any("fewer than 5 seamounts" in r.getMessage() for r in caplog.records)


def test_model_metadata_carries_what_score_needs(patches):
    _, meta = train(patches, seed=0, **FAST)
    assert meta["patch_km"] == patches.attrs["patch_km"] and meta["patch_px"] == patches.attrs["patch_px"]
    assert meta["normalisation"] and meta["seamountae_version"]
    assert meta["calibration"]["errors"] == sorted(meta["calibration"]["errors"])


# ------------------------------------------------------------------------------ conformal score


def test_conformal_score_extremes_and_nan():
    cal = [0.1, 0.2, 0.3, 0.4]
    s = conformal_score(np.array([0.0, 0.1, 0.25, 0.4, 9.0, np.nan]), cal)
    np.testing.assert_allclose(s[:5], [1.0, 1.0, 3 / 5, 2 / 5, 1 / 5], rtol=1e-6)
    assert np.isnan(s[5])


@given(cal=st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=50),
       errors=st.lists(st.floats(0, 12, allow_nan=False), min_size=2, max_size=50))
@settings(max_examples=80, deadline=None)
def test_conformal_score_is_monotone_decreasing_in_error_and_in_0_1(cal, errors):
    errors = np.sort(np.asarray(errors))
    s = conformal_score(errors, cal)
    assert np.all((s > 0) & (s <= 1))
    assert np.all(np.diff(s) <= 0)  # a worse reconstruction is never more seamount-like


def test_conformal_score_on_calibration_errors_is_uniform():
    cal = np.random.default_rng(0).gamma(2.0, 0.1, 199)
    s = np.sort(conformal_score(cal, cal))
    np.testing.assert_allclose(s, np.arange(2, 201) / 200, rtol=1e-6)


def test_conformal_score_of_fresh_seamounts_keeps_one_minus_alpha():
    """Errors from the calibration distribution: score ≥ α keeps a fraction 1 − α (what --threshold means)."""
    rng = np.random.default_rng(1)
    cal, fresh = rng.gamma(2.0, 0.1, 999), rng.gamma(2.0, 0.1, 20000)
    s = conformal_score(fresh, cal)
    for alpha in (0.05, 0.25, 0.5):
        assert abs(np.mean(s >= alpha) - (1 - alpha)) < 0.02


# ---------------------------------------------------------------------------------- failures


def test_huge_learning_rate_stops_with_an_error(patches):
    with pytest.raises(SeamountaeError, match="diverged.*--learning-rate"):
        train(patches, seed=0, **{**FAST, "epochs": 3}, learning_rate=1e12)


def test_absurd_patch_values_stop_with_an_error(patches):
    bad = patches.copy(deep=True)
    bad["patch"].values[:] = 3e38  # finite float32, but their variance overflows
    with pytest.raises(SeamountaeError, match="diverged"):
        train(bad, seed=0, **FAST)


def test_infinite_cells_count_as_missing(patches):
    bad = patches.copy(deep=True)
    bad["patch"].values[:, 0, 0] = np.inf
    _, meta = train(bad, seed=0, **FAST)
    assert np.isfinite(meta["training"]["loss_history"]).all()


def test_train_refuses_a_dataset_that_is_not_patches(patches):
    other = patches.copy()
    other.attrs["seamountae_kind"] = "score"
    with pytest.raises(SeamountaeError, match="seamountae tile"):
        train(other, **FAST)


def test_train_refuses_patch_sizes_the_autoencoder_cannot_take(patches):
    cut = patches.isel(u=slice(0, 12), v=slice(0, 12))
    with pytest.raises(SeamountaeError, match="multiple of 8"):
        train(cut, **FAST)


def test_train_refuses_an_unavailable_device(patches, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SeamountaeError, match="CUDA is not available"):
        train(patches, **{**FAST, "device": "cuda"})


# ---------------------------------------------------------------------------------- augmentation


def test_dihedral_gives_the_eight_symmetries():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    images = [dihedral(x, k) for k in range(8)]
    assert torch.equal(images[0], x)
    assert len({tuple(im.flatten().tolist()) for im in images}) == 8
    assert all(sorted(im.flatten().tolist()) == list(range(16)) for im in images)  # only moved, never changed
