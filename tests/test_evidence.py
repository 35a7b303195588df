"""Evidence: candidates found block by block as on the whole grid, the model's evidence, the combiner, the threshold rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from conftest import model_meta
from seamountae.calibration import Combiner, best_f1_threshold, calibrate
from seamountae.candidates import CandidateRules, find_candidates
from seamountae.config import EVIDENCE, GRID_EVIDENCE
from seamountae.evidence import (N_NEIGHBOURS, NEIGHBOUR_OFFSETS, LatentMemory, candidate_patches, encode, evidence_table,
                                 judge_grid, model_evidence)
from seamountae.model import PatchAutoencoder
from seamountae.synth import synthesize

RULES = CandidateRules(patch_km=24.0, window_km=(12.0, 48.0))


@pytest.fixture(scope="module")
def fabric():
    return synthesize(seed=2, scenario="fabric", shape=(150, 180))[0]


def test_candidates_found_block_by_block_equal_the_whole_grid(fabric):
    whole = find_candidates(fabric, RULES)
    assert len(whole) > 10
    parts = pd.concat([find_candidates(fabric, RULES, slice(a, min(a + 37, 150))) for a in range(0, 150, 37)])
    pd.testing.assert_frame_equal(parts.sort_values(["row", "col"]).reset_index(drop=True),
                                  whole.sort_values(["row", "col"]).reset_index(drop=True))
    # Tiles of rows and columns too (odd sizes, summits on their edges among them).
    tiles = pd.concat([find_candidates(fabric, RULES, slice(a, min(a + 37, 150)), slice(c, min(c + 41, 180)))
                       for a in range(0, 150, 37) for c in range(0, 180, 41)])
    pd.testing.assert_frame_equal(tiles.sort_values(["row", "col"]).reset_index(drop=True),
                                  whole.sort_values(["row", "col"]).reset_index(drop=True))


def test_candidates_stand_their_minimum_height_away_from_missing_cells(fabric):
    holed = fabric.copy(data=fabric.values.copy())
    holed.values[60:80, 60:90] = np.nan
    found = find_candidates(holed, RULES)
    assert (found["height_m"] >= RULES.min_height_m).all() and (found["basal_radius_km"] > 0).all()
    rows, cols = found["row"].to_numpy(), found["col"].to_numpy()
    near_hole = (rows > 55) & (rows < 85) & (cols > 55) & (cols < 95)
    assert not near_hole.any()  # 5 km (~3 cells) from the gap at least


def test_judging_the_grid_in_blocks_is_judging_it_whole(fabric, monkeypatch):
    import seamountae.candidates as candidates

    torch.manual_seed(0)
    model = PatchAutoencoder(patch_px=16, latent=4, width=4).eval()
    meta = {**model_meta(24.0, 16), "candidates": RULES.as_meta()}
    whole = judge_grid(fabric, model, meta)
    monkeypatch.setattr(candidates, "BLOCK_CELLS", 30 * 180)
    blocks = judge_grid(fabric, model, meta)
    pd.testing.assert_frame_equal(whole, blocks, rtol=1e-5)
    monkeypatch.setattr(candidates, "TILE_READ_CELLS", 100 * 60)  # and in tiles of columns
    tiles = judge_grid(fabric, model, meta)
    pd.testing.assert_frame_equal(whole, tiles, rtol=1e-5)
    assert ((whole["score"] >= 0) & (whole["score"] <= 1)).all()
    assert np.isfinite(whole[["error", "latent_distance"]].to_numpy()).all()


def test_error_contrast_is_measured_where_the_score_combines_it_or_when_asked(fabric):
    torch.manual_seed(0)
    model = PatchAutoencoder(patch_px=16, latent=4, width=4).eval()
    meta = {**model_meta(24.0, 16), "candidates": RULES.as_meta()}  # its score combines log_height alone
    lean, asked = judge_grid(fabric, model, meta), judge_grid(fabric, model, meta, contrast=True)
    assert lean["error_contrast"].isna().all() and np.isfinite(asked["error_contrast"]).all()
    pd.testing.assert_frame_equal(lean.drop(columns="error_contrast"), asked.drop(columns="error_contrast"))
    combined = {**meta, "combiner": {"names": ["log_height", "error_contrast"], "mean": [6.5, 0.0], "scale": [0.5, 1.0],
                                     "coef": [1.0, -1.0], "intercept": 0.0}}
    used = judge_grid(fabric, model, combined)
    np.testing.assert_allclose(used["error_contrast"], asked["error_contrast"], rtol=1e-6)
    assert not np.allclose(used["score"], asked["score"])  # the contrast moved the score


def test_candidate_patches_are_the_own_patch_then_the_surroundings():
    # A plane rising 1 m per km east and 10 m per km north, on a projected grid of 1 km cells.
    c = (np.arange(201) - 100) * 1000.0
    xx, yy = np.meshgrid(c / 1000, c / 1000)
    grid = xr.DataArray((-4000.0 + xx + 10 * yy).astype(np.float32), dims=("y", "x"), coords={"y": c, "x": c},
                        attrs={"geographic": 0, "crs": ""})
    table = pd.DataFrame({"x": [0.0], "y": [0.0], "window_km": [20.0]})
    patches = candidate_patches(grid, table, 16, 24.0)
    assert patches.shape == (1, 1 + N_NEIGHBOURS, 16, 16)
    centre = patches[0, :, 7:9, 7:9].mean(axis=(1, 2)) + 4000.0  # each patch's centre value
    assert centre[0] == pytest.approx(0.0, abs=1e-3)
    # The first neighbour lies NEIGHBOUR_OFFSETS[0] windows north, the third as far east.
    assert centre[1] == pytest.approx(10 * NEIGHBOUR_OFFSETS[0] * 20.0, rel=1e-3)
    assert centre[3] == pytest.approx(NEIGHBOUR_OFFSETS[0] * 20.0, rel=1e-3)
    assert centre[9] == pytest.approx(10 * NEIGHBOUR_OFFSETS[1] * 20.0, rel=1e-3)


def test_error_contrast_is_the_own_error_over_the_surroundings_median():
    torch.manual_seed(1)
    model = PatchAutoencoder(patch_px=16, latent=4, width=4).eval()
    patches = np.random.default_rng(0).normal(size=(3, 1 + N_NEIGHBOURS, 16, 16)).astype(np.float32) * 100 - 4000
    found = model_evidence(model, patches, LatentMemory(np.zeros(4), np.eye(4)))
    errors = encode(model, patches.reshape(-1, 16, 16))[0].reshape(3, -1)
    np.testing.assert_allclose(found["error"], errors[:, 0])
    np.testing.assert_allclose(found["error_contrast"], np.log(errors[:, 0]) - np.log(np.median(errors[:, 1:], axis=1)),
                               rtol=1e-5)
    assert found["latent_distance"].shape == (3,)


def test_latent_memory_is_far_from_what_it_never_saw():
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(200, 4)) * [1, 2, 3, 4]
    memory = LatentMemory.fit(codes)
    inside, outside = memory.distance(np.zeros((1, 4))), memory.distance(np.array([[0.0, 0.0, 0.0, 40.0]]))
    assert outside > inside + 3
    # Along a wide direction as far as along a narrow one, in units of their spread.
    a, b = memory.distance(np.array([[2.0, 0, 0, 0]])), memory.distance(np.array([[0, 0, 0, 8.0]]))
    assert a == pytest.approx(b, abs=0.5)
    again = LatentMemory.from_meta(memory.as_meta())
    np.testing.assert_allclose(again.distance(codes[:5]), memory.distance(codes[:5]))


def test_combiner_learns_the_direction_of_each_evidence():
    rng = np.random.default_rng(0)
    n = 400
    label = (rng.random(n) < 0.3).astype(int)
    evidence = pd.DataFrame({"log_height": rng.normal(6 + label, 0.4), "elongation": rng.normal(0.6 - 0.3 * label, 0.15),
                             "closure": rng.random(n)})
    combiner = Combiner.fit(evidence, label, ["log_height", "elongation", "closure"])
    coef = dict(zip(combiner.names, combiner.coef))
    assert coef["log_height"] > 1 and coef["elongation"] < -1 and abs(coef["closure"]) < 0.5
    score = combiner.score(evidence)
    assert ((score > 0) & (score < 1)).all() and score[label == 1].mean() > score[label == 0].mean() + 0.4
    again = Combiner.from_meta(combiner.as_meta())
    np.testing.assert_allclose(again.score(evidence), score)


def test_combiner_counts_missing_evidence_as_the_mean():
    evidence = pd.DataFrame({"log_height": [5.0, 6.0, 7.0, 8.0], "elongation": [0.1, np.nan, 0.5, 0.2]})
    combiner = Combiner.fit(evidence, np.array([0, 0, 1, 1]), ["log_height", "elongation"])
    filled = evidence.fillna({"elongation": np.nanmean(evidence["elongation"])})
    np.testing.assert_allclose(combiner.score(evidence), combiner.score(filled))


def test_best_f1_threshold():
    score = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1])
    label = np.array([1, 1, 0, 1, 0, 0])
    best = best_f1_threshold(score, label)
    # Keeping the top four gives TP 3, FP 1: F1 6/7, the best; the cut lies between 0.4 and the next score down.
    assert best["f1"] == pytest.approx(6 / 7) and 0.3 < best["threshold"] <= 0.4
    assert (best["precision"], best["recall"]) == (0.75, 1.0)
    # Seamounts no candidate stands for are missed at any threshold.
    unseen = best_f1_threshold(score, label, n_unseen=3)
    assert unseen["recall"] == pytest.approx(3 / 6)


def test_calibrate_uses_only_labelled_candidates():
    rng = np.random.default_rng(1)
    evidence = pd.DataFrame({"log_height": rng.normal(6, 1, 50)})
    label = np.where(evidence["log_height"] > 6.5, 1, 0)
    label[:10] = -1
    combiner, chosen = calibrate(evidence, label, 0, ["log_height"])
    assert chosen["f1"] == 1.0
    assert combiner.names == ("log_height",)


def test_evidence_table_reads_every_evidence():
    table = pd.DataFrame({"height_m": [1000.0], "basal_radius_km": [5.0], "closure": [1.0], "elongation": [0.2],
                          "error": [0.5], "error_contrast": [-0.3], "latent_distance": [2.0]})
    ev = evidence_table(table)
    assert list(ev.columns) == list(EVIDENCE)
    assert ev["log_height"][0] == pytest.approx(np.log(1000.0)) and ev["log_steepness"][0] == pytest.approx(np.log(0.2))
    assert list(evidence_table(table.drop(columns=["error", "error_contrast", "latent_distance"])).columns) == list(GRID_EVIDENCE)
