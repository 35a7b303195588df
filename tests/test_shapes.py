"""Shape classes: k-means of the training seamounts' latent codes, carried to every candidate and
catalogue entry; `similar` ranks a catalogue by shape; the adjusted Rand index and silhouette."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ok, run_cli
from seamountae.catalogue import read_catalogue
from seamountae.errors import SeamountaeError
from seamountae.model import read_model
from seamountae.shapes import NO_CLASS, ShapeClasses, adjusted_rand_index, kmeans, silhouette, similar


def blobs(seed=0, n=40):
    """Three well-separated groups of 4-d codes, heights rising with the group."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0, 0], [6, 0, 0, 0], [0, 6, 0, 0]], float)
    codes = np.vstack([c + rng.normal(0, 0.5, (n, 4)) for c in centres])
    truth = np.repeat([0, 1, 2], n)
    heights = np.array([500.0, 2000.0, 1000.0])[truth] + rng.normal(0, 50, len(truth))
    return codes, truth, {"height_m": heights, "basal_radius_km": np.full(len(truth), 5.0),
                          "closure": np.ones(len(truth)), "elongation": np.zeros(len(truth))}


def test_kmeans_finds_separate_groups_and_classes_run_by_height():
    codes, truth, morph = blobs()
    classes = ShapeClasses.fit(codes, 3, seed=0, morphometrics=morph)
    labels, distance = classes.assign(codes)
    assert adjusted_rand_index(labels, truth) == pytest.approx(1.0)
    # Class 1 is the lowest group, class 3 the highest.
    assert [round(c["median_height_m"], -2) for c in classes.described] == [500.0, 1000.0, 2000.0]
    assert [c["n"] for c in classes.described] == [40, 40, 40]
    # Standardised per dimension, the two noise dimensions weigh as much as the two that separate.
    assert classes.silhouette > 0.3 and np.all(distance < 4)
    shuffled = np.random.default_rng(0).permutation(labels)
    assert silhouette(classes.standardise(codes), shuffled) < 0.05


def test_shape_classes_round_trip_through_the_model_file_metadata():
    codes, _, morph = blobs()
    classes = ShapeClasses.fit(codes, 3, seed=0, morphometrics=morph)
    back = ShapeClasses.from_meta(json.loads(json.dumps(classes.as_meta())))
    np.testing.assert_array_equal(back.assign(codes)[0], classes.assign(codes)[0])
    assert ShapeClasses.from_meta(None) is None
    assert ShapeClasses.fit(codes[:1], 3, 0, {k: v[:1] for k, v in morph.items()}) is None  # one seamount: no classes


def test_adjusted_rand_index_and_silhouette_on_known_cases():
    a = np.array([0, 0, 1, 1, 2, 2])
    assert adjusted_rand_index(a, a) == 1.0
    assert adjusted_rand_index(a, [5, 5, 7, 7, 9, 9]) == 1.0  # names do not matter
    assert adjusted_rand_index([0, 0, 0, 1, 1, 1], [0, 1, 0, 1, 0, 1]) < 0.1
    rng = np.random.default_rng(1)
    assert abs(np.mean([adjusted_rand_index(rng.integers(0, 3, 200), rng.integers(0, 3, 200)) for _ in range(20)])) < 0.02
    z = np.array([[0.0], [0.1], [10.0], [10.1]])
    assert silhouette(z, np.array([0, 0, 1, 1])) > 0.95
    centroids, labels = kmeans(z, 2, seed=3)
    assert adjusted_rand_index(labels, [0, 0, 1, 1]) == 1.0


def test_similar_ranks_by_code_distance_and_refuses_what_it_cannot_rank():
    import pandas as pd

    table = pd.DataFrame({"id": [1, 2, 3, 4], "lon": [0, 1, 2, 3], "lat": [0, 0, 0, 0], "height_m": [1, 2, 3, 4],
                          "shape_class": [1, 1, 2, 2], "shape_code_1": [0.0, 5.0, 1.0, 2.0],
                          "shape_code_2": [0.0, 0.0, 0.0, 0.0]})
    ranked = similar(table, 1)
    assert ranked["id"].tolist() == [3, 4, 2] and ranked["shape_distance_to"].tolist() == [1.0, 2.0, 5.0]
    with pytest.raises(SeamountaeError, match="no seamount with id 9"):
        similar(table, 9, "cat.csv")
    with pytest.raises(SeamountaeError, match="no shape codes"):
        similar(table.drop(columns=["shape_code_1", "shape_code_2"]), 1, "cat.csv")


def test_trained_model_has_shape_classes_and_every_catalogue_entry_one(model_file, detections_file, tmp_path):
    meta = read_model(model_file)[1]
    classes = meta["shape_classes"]
    assert 2 <= len(classes["centroids"]) <= 4
    assert sum(c["n"] for c in classes["classes"]) == meta["calibration"]["n_seamounts"]
    heights = [c["median_height_m"] for c in classes["classes"]]
    assert heights == sorted(heights)
    card = ok(run_cli(["models", model_file])).stdout
    assert "shape classes" in card and "class 1:" in card
    out = tmp_path / "found.geojson"
    ok(run_cli(["export", detections_file, "-o", out]))
    table = read_catalogue(out)
    assert len(table) >= 2
    assert set(table["shape_class"]) <= set(range(1, len(classes["centroids"]) + 1))
    assert (table["shape_distance"] >= 0).all()
    latent = meta["training"].get("latent") or len(classes["mean"])
    assert [f"shape_code_{i + 1}" for i in range(latent)] == [c for c in table.columns if c.startswith("shape_code_")]
    first = str(table["id"].iloc[0])
    result = ok(run_cli(["similar", out, first, "-n", "3", "--csv"]))
    lines = result.stdout.strip().splitlines()
    assert lines[0].split(",")[0] == "id" and len(lines) == 1 + min(3, len(table) - 1)
    distances = [float(line.split(",")[-1]) for line in lines[1:]]
    assert distances == sorted(distances)


def test_similar_unknown_id_and_a_catalogue_without_codes_are_one_line_errors(detections_file, tmp_path):
    out = tmp_path / "found.csv"
    ok(run_cli(["export", detections_file, "-o", out]))
    result = run_cli(["similar", out, "99999"])
    assert result.exit_code == 1 and "no seamount with id 99999" in result.stderr and result.stderr.count("\n") == 1
    plain = tmp_path / "plain.csv"
    plain.write_text("id,lon,lat\n1,0,0\n2,1,1\n")
    result = run_cli(["similar", plain, "1"])
    assert result.exit_code == 1 and "no shape codes" in result.stderr and result.stderr.count("\n") == 1


def test_a_model_without_shape_classes_gives_class_zero():
    from seamountae.evidence import shape_columns

    found = shape_columns(np.zeros((3, 4), np.float32), None)
    assert found["shape_class"].tolist() == [NO_CLASS] * 3 and np.isnan(found["shape_distance"]).all()
