"""From a grid to a catalogue: `find`, the built-in model, and outputs that open everywhere (GMT text,
footprint polygons, GeoTIFF score maps), each checked with the library users' tools use."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import xarray as xr

from conftest import ok, run_cli
from seamountae.catalogue import read_catalogue
from seamountae.grid import from_cf_dataset
from seamountae.models import BUILTIN
from seamountae.outputs import read_provenance
from seamountae.model import read_model


def test_find_equals_score_detect_export(tmp_path, grid_file, model_file, detections_file):
    out = tmp_path / "found.geojson"
    result = ok(run_cli(["find", grid_file, "--model", model_file, "--device", "cpu", "-o", out]))
    assert "seamounts among" in result.stderr
    found = read_catalogue(out)
    ok(run_cli(["export", detections_file, "-o", tmp_path / "staged.geojson"]))
    staged = read_catalogue(tmp_path / "staged.geojson")
    assert found[["lon", "lat", "height_m", "score"]].equals(staged[["lon", "lat", "height_m", "score"]])
    record = read_provenance(out)
    assert set(record["inputs"]) == {"grid", "model"} and {"score", "detect", "format"} <= set(record["parameters"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["found.geojson", "staged.geojson"]  # no intermediates left


def test_find_keeps_the_intermediates_when_asked(tmp_path, grid_file, model_file):
    out, keep = tmp_path / "found.csv", tmp_path / "work"
    ok(run_cli(["find", grid_file, "--model", model_file, "--device", "cpu", "-o", out, "--keep", keep]))
    assert sorted(p.name for p in keep.iterdir()) == ["detections.nc", "score.nc"]
    assert out.read_text().startswith("# seamountae ") and "lon,lat" in out.read_text()  # CSV by its name


def test_find_uses_the_built_in_model_and_says_so(tmp_path, grid_file):
    result = ok(run_cli(["find", grid_file, "--device", "cpu", "-o", tmp_path / "found.txt"]))
    assert "using the built-in model" in result.stderr
    assert read_provenance(tmp_path / "found.txt")["inputs"]["model"]["path"] == str(BUILTIN)
    assert ok(run_cli(["-q", "find", grid_file, "--device", "cpu", "-o", tmp_path / "quiet.txt"])).stderr == ""


def test_built_in_model_loads_and_has_a_card():
    model, meta = read_model(BUILTIN)
    assert BUILTIN.stat().st_size < 1_000_000
    card = ok(run_cli(["models"])).stdout
    assert str(BUILTIN) in card and "threshold auto" in card and "not to be trusted" in card
    assert f"{meta['training']['n_seamounts']} catalogued seamounts" in card
    assert "outlier exposure: " in card


def test_gmt_text_opens_as_columns(tmp_path, detections_file):
    out = tmp_path / "seamounts.txt"
    ok(run_cli(["export", detections_file, "-o", out]))
    lines = out.read_text().splitlines()
    header = next(line for line in lines if line.startswith("# ") and not line.startswith("# seamountae"))
    columns = header[2:].split()
    assert columns[:3] == ["lon", "lat", "id"] and "height_m" in columns
    rows = [line.split() for line in lines if not line.startswith("#")]
    assert rows and all(len(r) == len(columns) for r in rows)
    table = np.array([[float(v) for v in r[:2]] for r in rows])
    back = read_catalogue(out)  # GMT text reads back, lon lat first
    np.testing.assert_allclose(back[["lon", "lat"]].to_numpy(), table)


def test_footprints_are_valid_rfc7946_polygons_around_their_summits(tmp_path, detections_file):
    shapely = pytest.importorskip("shapely")
    from shapely.geometry import Point, shape

    ok(run_cli(["export", detections_file, "-o", tmp_path / "s.geojson", "--footprints", tmp_path / "f.geojson"]))
    points = {f["id"]: f for f in json.loads((tmp_path / "s.geojson").read_text())["features"]}
    polygons = json.loads((tmp_path / "f.geojson").read_text())["features"]
    assert polygons and len(polygons) == len(points)
    for feature in polygons:
        ring = feature["geometry"]["coordinates"][0]
        assert feature["geometry"]["type"] == "Polygon" and ring[0] == ring[-1] and len(ring) >= 4
        polygon = shape(feature["geometry"])
        assert polygon.is_valid and polygon.exterior.is_ccw  # RFC 7946: exterior rings counter-clockwise
        summit = Point(points[feature["id"]]["geometry"]["coordinates"])
        assert polygon.buffer(1e-9).contains(summit)
    assert shapely.__version__


def test_score_as_a_geotiff_that_gdal_reads(tmp_path, grid_file, model_file, score_file):
    out = tmp_path / "score.tif"
    ok(run_cli(["score", grid_file, "--model", model_file, "--device", "cpu", "-o", out]))
    with xr.open_dataset(score_file) as raw:
        expected = from_cf_dataset(raw.load())
    with rasterio.open(out) as src:
        assert src.driver == "GTiff" and src.count == 2 and src.crs.to_epsg() == 4326
        assert src.profile["tiled"] and src.compression is not None and np.isnan(src.nodata)
        assert src.descriptions[0].startswith("score") and src.descriptions[1].startswith("error")
        assert src.overviews(1) or min(src.shape) < 512  # Cloud-Optimized: overviews where there is room
        assert "seamountae_parameters" in src.tags()
        score = src.read(1)[::-1]  # north-up
        x0, y0 = src.xy(src.height - 1, 0)  # the centre of the south-west cell
    np.testing.assert_array_equal(score, expected["score"].values[0])
    assert (x0, y0) == pytest.approx((float(expected.x[0]), float(expected.y[0])))
    bad = run_cli(["detect", out, "-o", tmp_path / "det.nc"])
    assert bad.exit_code == 1 and "GeoTIFF score is for viewing" in bad.stderr and bad.stderr.count("\n") == 1
