"""Training: reproducible models, cross-fitted calibration of the evidence, the threshold rule, the conformal score, divergence."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import TRAIN_OPTIONS, ok, run_cli, state_bytes
from seamountae.errors import SeamountaeError
from seamountae.patches import normalise
from seamountae.calibration import conformal_score
from seamountae.config import EVIDENCE, GRID_EVIDENCE, MODEL_EVIDENCE
from seamountae.model import read_model
from seamountae.training import assign_folds, dihedral, train

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


# --------------------------------------------------------------------------------- cross-fitting


@given(n_groups=st.integers(2, 60), per_group=st.integers(1, 5), folds=st.integers(2, 6), seed=st.integers(0, 10**6))
@settings(max_examples=60, deadline=None)
def test_folds_hold_out_whole_seamounts_in_balanced_shares(n_groups, per_group, folds, seed):
    rng = np.random.default_rng(seed)
    groups = rng.permutation(np.repeat(rng.choice(10**6, n_groups, replace=False), per_group))
    fold = assign_folds(groups, folds, seed)
    for g in np.unique(groups):
        assert len(set(fold[groups == g])) == 1  # all of a seamount's patches in one fold
    per_fold = np.bincount([fold[groups == g][0] for g in np.unique(groups)], minlength=folds)
    assert per_fold.max() - per_fold.min() <= 1
    assert np.array_equal(fold, assign_folds(groups, folds, seed))  # reproducible


def test_each_candidate_is_judged_by_a_model_that_did_not_learn_it(patches, monkeypatch):
    """The fold models never train on the seamount whose candidate they judge; every candidate is judged once."""
    import seamountae.training as training

    x, _, _ = normalise(patches["patch"].values)
    seamount_of_patch = {row.tobytes(): s for row, s in zip(x, patches["seamount"].values)}
    candidate_of_patch = {c[0].tobytes(): i for i, c in enumerate(patches["candidate_patch"].values)}
    trained, judged = [], []
    fit, evidence = training._fit, training.model_evidence

    def spy_fit(x_fit, *args, **kwargs):
        trained.append({seamount_of_patch[row.tobytes()] for row in x_fit[:, 0].numpy()})
        return fit(x_fit, *args, **kwargs)

    def spy_evidence(model, cand_patches, memory=None):
        judged.append([candidate_of_patch[c[0].tobytes()] for c in cand_patches])
        return evidence(model, cand_patches, memory)

    monkeypatch.setattr(training, "_fit", spy_fit)
    monkeypatch.setattr(training, "model_evidence", spy_evidence)
    _, meta = train(patches, seed=0, folds=3, **FAST)
    every = set(patches["seamount"].values.tolist())
    assert len(trained) == 4 and trained[-1] == every and all(t < every for t in trained[:3])  # 3 folds, then all
    assert sorted(i for fold in judged for i in fold) == list(range(patches.sizes["candidate"]))  # each once
    owner = patches["candidate_seamount"].values
    for fold, (seen, candidates) in enumerate(zip(trained, judged)):
        assert not {int(owner[i]) for i in candidates} & seen, f"fold {fold} judged a seamount it learnt"
    labels = patches["candidate_label"].values
    assert (labels == 1).sum() >= 3 and meta["calibration"]["n_seamounts"] == int((labels == 1).sum())
    assert len(meta["calibration"]["label"]) == patches.sizes["candidate"]


def test_calibration_evidence_and_map_errors_come_from_the_fold_models(patches):
    _, meta = train(patches, seed=0, **FAST)
    cal = meta["calibration"]
    assert set(cal["evidence"]) == set(EVIDENCE)
    labels = np.asarray(cal["label"])
    errors = np.exp(np.asarray(cal["evidence"]["log_error"]))[labels == 1]
    # The map's p-values: held-out errors, scored as the map scores, at each precision.
    np.testing.assert_allclose(sorted(errors), cal["errors"]["fp32"], rtol=1e-5)
    for precision in ("bf16", "fp16"):
        np.testing.assert_allclose(cal["errors"][precision], cal["errors"]["fp32"], rtol=0.03)
        assert cal["errors"][precision] != cal["errors"]["fp32"]  # really computed at that precision


def test_threshold_is_the_best_f1_on_the_calibration_candidates(patches):
    from seamountae.calibration import Combiner, best_f1_threshold
    import pandas as pd

    _, meta = train(patches, seed=0, **FAST)
    cal, t = meta["calibration"], meta["threshold"]
    evidence, labels = pd.DataFrame(cal["evidence"]), np.asarray(cal["label"])
    score = Combiner.from_meta(meta["combiner"]).score(evidence)
    known = labels >= 0
    again = best_f1_threshold(score[known], labels[known], cal["n_unseen"])
    assert t["value"] == pytest.approx(again["threshold"]) and t["f1"] == pytest.approx(again["f1"])
    # No other cut does better on those candidates.
    n_pos = int((labels == 1).sum()) + cal["n_unseen"]
    for cut in np.linspace(0, 1, 101):
        kept = score[known] >= cut
        tp, fp = int((kept & (labels[known] == 1)).sum()), int((kept & (labels[known] == 0)).sum())
        assert 2 * tp / (2 * tp + fp + n_pos - tp) <= t["f1"] + 1e-12
    assert "best F1" in t["rule"]


def test_the_combiner_uses_the_evidence_asked_for(patches):
    _, default = train(patches, seed=0, **FAST)
    assert default["combiner"]["names"] == list(GRID_EVIDENCE)
    _, with_model = train(patches, seed=0, evidence=("log_height", "error_contrast"), **FAST)
    assert with_model["combiner"]["names"] == ["log_height", "error_contrast"]
    assert set(MODEL_EVIDENCE) & set(with_model["combiner"]["names"])


def test_too_few_seamounts_for_the_folds_is_refused(patches):
    few = patches.isel(sample=np.flatnonzero(patches["seamount"].values < 3))
    few = few.assign(seamount=few["seamount"].where(few["seamount"] < 3))
    n = len(np.unique(few["seamount"].values))
    with pytest.raises(SeamountaeError, match=f"{n} training seamount.*--folds"):
        train(few, seed=0, folds=n + 1, **FAST)


def test_model_metadata_carries_what_score_needs(patches):
    _, meta = train(patches, seed=0, **FAST)
    assert meta["patch_km"] == patches.attrs["patch_km"] and meta["patch_px"] == patches.attrs["patch_px"]
    assert meta["normalisation"] and meta["seamountae_version"]
    assert all(errors == sorted(errors) for errors in meta["calibration"]["errors"].values())
    assert {"combiner", "threshold", "latent_memory", "candidates"} <= set(meta)
    assert 0 < meta["threshold"]["value"] < 1


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


def test_stored_calibration_ignores_the_last_bits_of_blas(patches):
    """What BLAS kernels change (the last bits of float64 arithmetic) never reaches the model file:
    the combiner and latent memory fitted to inputs one ulp apart are stored identically."""
    import pandas as pd

    from seamountae.calibration import Combiner
    from seamountae.evidence import LatentMemory

    rng = np.random.default_rng(0)
    evidence = pd.DataFrame(rng.normal(size=(300, 4)), columns=list(GRID_EVIDENCE))
    label = (evidence["log_height"] + rng.normal(size=300) > 0.5).astype(int).to_numpy()
    nudged = pd.DataFrame(np.nextafter(evidence.to_numpy(), np.inf), columns=evidence.columns)  # one ulp up
    assert not evidence.equals(nudged)
    assert Combiner.fit(evidence, label, GRID_EVIDENCE).as_meta() == Combiner.fit(nudged, label, GRID_EVIDENCE).as_meta()
    codes = rng.normal(size=(80, 8))
    assert LatentMemory.fit(codes).as_meta() == LatentMemory.fit(np.nextafter(codes, np.inf)).as_meta()


def test_cli_model_file_is_the_same_whatever_the_blas_threads(tmp_path, patches_file):
    """`train --threads 1` bounds BLAS too; with torch at one thread (conftest), a model trained with
    BLAS at 1 and at 2 threads is the same file, but for the command line its provenance records."""
    import io

    from threadpoolctl import threadpool_info, threadpool_limits

    files = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="blas"):
            assert all(p["num_threads"] == threads for p in threadpool_info() if p["user_api"] == "blas")
            ok(run_cli(["train", patches_file, *TRAIN_OPTIONS, "--epochs", "1", "-o", tmp_path / f"m{threads}.pt"]))
        content = torch.load(tmp_path / f"m{threads}.pt", weights_only=True)
        content["provenance"]["command"] = ""
        buffer = io.BytesIO()
        torch.save(content, buffer)
        files.append(buffer.getvalue())
    assert files[0] == files[1]
    ok(run_cli(["train", patches_file, *TRAIN_OPTIONS, "--epochs", "1", "--threads", "1", "-o", tmp_path / "t.pt"]))
    assert read_model(tmp_path / "t.pt")[1]["threshold"] == read_model(tmp_path / "m1.pt")[1]["threshold"]


# --------------------------------------------------------------------------------- outlier exposure


def test_outlier_exposure_never_shows_a_fold_the_background_it_judges(patches, monkeypatch):
    import seamountae.training as training
    from seamountae.models import card

    candidate_of_patch = {c.tobytes(): i for i, c in enumerate(normalise(patches["candidate_patch"].values[:, 0])[0])}
    shown, judged, margins = [], [], []
    fit, evidence = training._fit, training.model_evidence

    def spy_fit(*args, **kwargs):
        outliers = args[-1] if len(args) > 15 else kwargs.get("outliers")
        shown.append({candidate_of_patch[p.tobytes()] for p in outliers[0][:, 0].numpy()})
        margins.append(outliers[3])
        return fit(*args, **kwargs)

    def spy_evidence(model, cand_patches, memory=None):
        judged.append({candidate_of_patch[normalise(c[:1])[0][0].tobytes()] for c in cand_patches})
        return evidence(model, cand_patches, memory)

    monkeypatch.setattr(training, "_fit", spy_fit)
    monkeypatch.setattr(training, "model_evidence", spy_evidence)
    _, meta = train(patches, seed=0, folds=3, outlier_weight=1.0, outlier_margin=2.0, **FAST)
    background = set(np.flatnonzero(patches["candidate_label"].values == 0).tolist())
    assert len(shown) == 4 and shown[-1] == background  # the final model sees all of it
    for fold in range(3):
        assert shown[fold] == background - judged[fold]  # each fold: all but what it judges
    assert meta["training"]["outlier_weight"] == 1.0 and meta["training"]["n_outliers"] == len(background)
    assert margins == [2.0] * 4 and meta["training"]["outlier_margin"] == 2.0
    assert f"{len(background)} background candidates pushed towards an error of 2, weight 1" in card(meta, "m.pt")


def test_outlier_exposure_rebuilds_background_worse_than_seamounts(patches):
    from seamountae.training import reconstruction_errors

    labels = patches["candidate_label"].values
    x, valid, _ = normalise(patches["candidate_patch"].values[:, 0])
    x, valid = torch.from_numpy(x)[:, None], torch.from_numpy(valid.astype(np.float32))[:, None]
    gaps = []
    for weight in (0.0, 1.0):
        model, _ = train(patches, seed=0, **{**FAST, "epochs": 30, "latent": 8, "width": 8}, outlier_weight=weight)
        error = np.log(reconstruction_errors(model, x, valid))
        gaps.append(np.median(error[labels == 0]) - np.median(error[labels == 1]))
    assert gaps[1] > gaps[0] + 0.1, gaps  # background pushed away from the seamounts


@pytest.mark.parametrize("changed", [{"outlier_weight": 1.0}, {"outlier_margin": 2.0}])
def test_outlier_exposure_is_part_of_a_checkpoints_fingerprint(patches, tmp_path, changed):
    from seamountae.training import checkpoint_mismatch, fingerprint, read_checkpoint

    ckpt = tmp_path / "m.pt.ckpt"
    train(patches, seed=0, checkpoint=ckpt, **{**FAST, "epochs": 1})
    expected = fingerprint(patches, epochs=1, seed=0, latent=4, width=4, batch_size=64, learning_rate=0.002, folds=4,
                           **{"outlier_weight": 0.0, "outlier_margin": 1.0, **changed})
    assert next(iter(changed)) in checkpoint_mismatch(read_checkpoint(ckpt), expected)
