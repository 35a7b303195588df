"""Detection on hand-built score datasets: the judged candidates decide; threshold, NMS, footprints, no result."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from rasterio.crs import CRS
from rasterio.warp import transform

from conftest import ok, run_cli
from seamountae.detection import COLUMNS, detect, detections_dataset, resolve_threshold, suppress_duplicates, table_from_detections
from seamountae.errors import SeamountaeError
from seamountae.candidates import CandidateRules, find_candidates
from seamountae.evidence import MODEL_COLUMNS, candidates_dataset, shape_columns
from seamountae.geometry import KM_PER_DEGREE
from seamountae.grid import WGS84_WKT, georeferenced
from seamountae.outputs import write_netcdf
from seamountae.synth import render_seamount

PATCH_KM = 24.0
BASE_M = -4500.0
LAT0, LON0 = 30.0, -30.0
STEP = 1 / 60
SHAPE = (100, 140)
AUTO = 0.5  # the model's own threshold in these score files
RULES = CandidateRules(patch_km=PATCH_KM, window_km=(12.0, 48.0), radius_ratio=6.0, min_height_m=300.0,
                       separation_km=6.0, missing_buffer_km=5.0)
# (row, col, height m, basal radius km, seamount score of its candidate)
BUMP_A = (40, 40, 1500.0, 10.0, 0.9)
BUMP_B = (65, 100, 800.0, 7.0, 0.6)


def km_offsets(row, col):
    """East and north km of every cell from cell (row, col) on the geographic test grid."""
    lat = LAT0 + STEP * np.arange(SHAPE[0])
    lon = LON0 + STEP * np.arange(SHAPE[1])
    east = (lon[None, :] - lon[col]) * KM_PER_DEGREE * np.cos(np.radians(lat[row]))
    north = (lat[:, None] - lat[row]) * KM_PER_DEGREE
    return east, north


def score_dataset(bumps=(BUMP_A, BUMP_B), geographic=True, x=None, y=None, crs=WGS84_WKT):
    """A score dataset as `seamountae score` makes it: elevation with Gaussian seamounts, its candidates
    (found and measured by the library), each scored as its bump says (0.01 away from any)."""
    elevation = np.full(SHAPE, BASE_M)
    for row, col, height, radius, _ in bumps:
        east, north = km_offsets(row, col)
        elevation = elevation + render_seamount(east, north, height, radius, "gaussian")
    y = LAT0 + STEP * np.arange(SHAPE[0]) if y is None else y
    x = LON0 + STEP * np.arange(SHAPE[1]) if x is None else x
    grid = xr.DataArray(elevation.astype(np.float32), dims=("y", "x"), coords={"y": y, "x": x},
                        attrs={"geographic": int(geographic), "crs": crs})
    table = find_candidates(grid, RULES)
    table["score"] = 0.01
    for row, col, _, _, score in bumps:
        near = np.hypot(table["row"] - row, table["col"] - col) <= 3
        table.loc[near, "score"] = score
    for name in MODEL_COLUMNS:
        table[name] = np.nan
    table = table.assign(**shape_columns(np.zeros((len(table), 0)), None))  # a model without shape classes
    dims = ("y", "x")
    ds = xr.Dataset({"elevation": (dims, grid.values), "score": (("level", *dims), np.zeros((1, *SHAPE), np.float32))},
                    coords={"y": y, "x": x},
                    attrs={"seamountae_kind": "score", "patch_km": PATCH_KM, "patch_px": 16, "stride_px": 2,
                           "geographic": int(geographic), "crs": crs, "threshold_auto": AUTO,
                           "candidate_rules": json.dumps(RULES.as_meta())})
    return ds.merge(candidates_dataset(table))


def cell_lonlat(row, col):
    return LON0 + STEP * col, LAT0 + STEP * row


def by_position(table):
    return table.sort_values("lon").reset_index(drop=True)


def test_two_bumps_give_two_seamounts_at_their_summits():
    table, footprints = detect(score_dataset(), threshold=0.5)
    assert set(COLUMNS) <= set(table.columns)
    assert len(table) == 2
    assert sorted(table["id"]) == [1, 2]
    a, b = by_position(table).itertuples()
    for found, (row, col, height, radius, score) in ((a, BUMP_A), (b, BUMP_B)):
        lon, lat = cell_lonlat(row, col)
        assert found.lon == pytest.approx(lon, abs=1e-9) and found.lat == pytest.approx(lat, abs=1e-9)
        assert found.summit_depth_m == pytest.approx(-(BASE_M + height), abs=1.0)
        assert found.height_m == pytest.approx(height, rel=0.05)
        # Twice the half-height radius: a Gaussian falls to half its height at 0.39 of its basal radius.
        assert 0.6 * radius < found.basal_radius_km < 1.0 * radius
        assert found.score == pytest.approx(score)
    assert footprints.shape == SHAPE and set(np.unique(footprints)) == {0, 1, 2}
    # Ids are in score order; each footprint holds its own summit.
    first = table.loc[table["id"] == 1].iloc[0]
    assert first.score == 0.9 and footprints[BUMP_A[0], BUMP_A[1]] == 1 and footprints[BUMP_B[0], BUMP_B[1]] == 2


def nms_table(rows):
    """Candidates on the test grid: (row, col, score, height, basal radius); coordinates from the cells."""
    table = pd.DataFrame(rows, columns=["row", "col", "score", "height_m", "basal_radius_km"])
    table["x"], table["y"] = LON0 + STEP * table["col"], LAT0 + STEP * table["row"]
    return table


def test_nms_keeps_the_best_of_duplicates():
    scores = score_dataset()
    # Columns are ~1.6 km apart at 30°N; rows ~1.85 km.
    table = nms_table([(50, 50, 0.8, 900.0, 4.0),   # duplicate of the next, 3.2 km away, lower score
                       (50, 52, 0.9, 800.0, 4.0),   # best: kept
                       (50, 70, 0.7, 900.0, 4.0),   # 29 km away: a different seamount
                       (50, 50, 0.9, 500.0, 4.0)])  # same score, lower: duplicate
    kept = suppress_duplicates(table, scores, separation_km=4.8)
    assert sorted(map(tuple, kept[["row", "col"]].to_numpy())) == [(50, 52), (50, 70)]
    assert kept["score"].tolist() == [0.9, 0.7]


def test_nms_uses_half_the_basal_radius_of_a_big_seamount():
    scores = score_dataset()
    table = nms_table([(50, 50, 0.9, 3000.0, 30.0),  # a big edifice
                       (50, 58, 0.8, 400.0, 3.0)])   # ~12.9 km away, inside half its 30 km radius
    assert len(suppress_duplicates(table, scores, separation_km=4.8)) == 1
    table.loc[0, "basal_radius_km"] = 10.0
    assert len(suppress_duplicates(table, scores, separation_km=4.8)) == 2


def test_threshold_keeps_only_scores_at_or_above_it():
    scores = score_dataset()
    assert len(detect(scores, threshold=0.6)[0]) == 2
    only_a = detect(scores, threshold=0.7)[0]
    assert len(only_a) == 1 and only_a["lon"][0] == pytest.approx(cell_lonlat(*BUMP_A[:2])[0])
    assert len(detect(scores, threshold="0.95")[0]) == 0


def test_auto_threshold_is_the_models_own():
    scores = score_dataset()
    assert len(detect(scores)[0]) == 2  # 0.9 and 0.6 pass the model's 0.5
    scores.attrs["threshold_auto"] = 0.7
    assert len(detect(scores, threshold="auto")[0]) == 1
    assert resolve_threshold("auto", scores) == 0.7


def test_min_height_drops_small_seamounts():
    table, _ = detect(score_dataset(), min_height_m=1000.0)
    assert len(table) == 1 and table["height_m"][0] > 1000


def test_no_candidate_passing_gives_an_empty_table():
    scores = score_dataset(bumps=())
    table, footprints = detect(scores, threshold=0.0)
    assert table.empty and set(COLUMNS) <= set(table.columns)
    assert footprints.max() == 0
    ds = detections_dataset(table, footprints, scores, AUTO)
    back = table_from_detections(ds)
    assert back.empty and list(back.columns[: len(COLUMNS)]) == COLUMNS


def test_detections_dataset_round_trip():
    scores = score_dataset()
    table, footprints = detect(scores)
    ds = detections_dataset(table, footprints, scores, AUTO)
    assert ds.attrs["seamountae_kind"] == "detections" and ds.attrs["threshold"] == AUTO
    back = table_from_detections(ds)
    pd.testing.assert_frame_equal(back[COLUMNS], table[COLUMNS].reset_index(drop=True), check_dtype=False)


def test_projected_grid_reports_wgs84_lon_lat():
    utm = CRS.from_epsg(32626)
    x0, y0 = transform(CRS.from_epsg(4326), utm, [LON0 + 1.0], [LAT0 + 0.5])
    x = x0[0] + 1852.0 * (np.arange(SHAPE[1]) - 40)  # ~1 minute cells, bump A's column at the origin
    y = y0[0] + 1852.0 * (np.arange(SHAPE[0]) - 40)
    scores = score_dataset(geographic=False, x=x, y=y, crs=utm.to_wkt())
    table, _ = detect(scores)
    a = by_position(table).iloc[0]
    assert (a["lon"], a["lat"]) == pytest.approx((LON0 + 1.0, LAT0 + 0.5), abs=1e-6)
    assert a["height_m"] == pytest.approx(BUMP_A[2], rel=0.05)


@pytest.mark.parametrize("given, expected", [("auto", AUTO), (None, AUTO), ("0.3", 0.3), (0.0, 0.0), ("1", 1.0)])
def test_threshold_parsing(given, expected):
    assert resolve_threshold(given, score_dataset(bumps=())) == expected


@pytest.mark.parametrize("given, words", [("abc", "not a number"), ("1.5", "between 0 and 1"),
                                          ("-0.1", "between 0 and 1"), ("nan", "between 0 and 1")])
def test_threshold_parsing_errors(given, words):
    with pytest.raises(SeamountaeError, match=words):
        resolve_threshold(given)


def test_detect_refuses_other_datasets():
    scores = score_dataset()
    scores.attrs["seamountae_kind"] = "patches"
    with pytest.raises(SeamountaeError, match="seamountae score"):
        detect(scores)


def test_detect_refuses_a_score_file_without_candidates():
    scores = score_dataset().drop_vars([n for n in score_dataset().data_vars if n.startswith("candidate_")])
    with pytest.raises(SeamountaeError, match="older seamountae.*score it again"):
        detect(scores)


# --------------------------------------------------------------------------------- through the CLI


@pytest.fixture
def hand_score_file(tmp_path):
    scores = score_dataset()
    path = tmp_path / "score.nc"
    write_netcdf(georeferenced(scores, scores["elevation"].assign_attrs(geographic=1, crs=WGS84_WKT)), path)
    return path


def test_cli_detect_and_export_find_the_two_bumps(tmp_path, hand_score_file):
    ok(run_cli(["detect", hand_score_file, "-o", tmp_path / "det.nc"]))
    ok(run_cli(["export", tmp_path / "det.nc", "-o", tmp_path / "found.geojson"]))
    doc = json.loads((tmp_path / "found.geojson").read_text())
    points = sorted(tuple(f["geometry"]["coordinates"]) for f in doc["features"])
    expected = [cell_lonlat(*BUMP_A[:2]), cell_lonlat(*BUMP_B[:2])]
    np.testing.assert_allclose(points, expected, atol=1e-6)


@pytest.mark.parametrize("threshold", ["abc", "2"])
def test_cli_detect_bad_threshold_is_a_one_line_error(tmp_path, hand_score_file, threshold):
    result = run_cli(["detect", hand_score_file, "--threshold", threshold, "-o", tmp_path / "det.nc"])
    assert result.exit_code == 1
    assert result.stderr.startswith("seamountae: error: --threshold") and result.stderr.count("\n") == 1
    assert not (tmp_path / "det.nc").exists()


def test_cli_detect_nothing_found_still_writes_an_empty_catalogue(tmp_path, hand_score_file):
    ok(run_cli(["detect", hand_score_file, "--threshold", "0.99", "-o", tmp_path / "det.nc"]))
    ok(run_cli(["export", tmp_path / "det.nc", "-o", tmp_path / "none.geojson"]))
    doc = json.loads((tmp_path / "none.geojson").read_text())
    assert doc["type"] == "FeatureCollection" and doc["features"] == []
    ok(run_cli(["export", tmp_path / "det.nc", "-o", tmp_path / "none.csv"]))
    lines = [l for l in (tmp_path / "none.csv").read_text().splitlines() if not l.startswith("#")]
    assert lines[0].split(",")[: len(COLUMNS)] == COLUMNS and len(lines) == 1


def test_streamed_detect_file_equals_detect_in_memory(tmp_path, score_file):
    """detect_file reads the candidates and each footprint's window only; the result is detect()'s."""
    from seamountae.config import defaults
    from seamountae.grid import from_cf_dataset
    from seamountae.outputs import read_netcdf
    from seamountae.pipeline import detect_file

    streamed = detect_file(score_file, tmp_path / "det.nc", defaults("detect"))
    scores = from_cf_dataset(read_netcdf(score_file, "score", "score"))
    table, footprints = detect(scores)
    assert len(table) >= 2
    pd.testing.assert_frame_equal(streamed.reset_index(drop=True), table.reset_index(drop=True))
    with xr.open_dataset(tmp_path / "det.nc") as ds:
        back = from_cf_dataset(ds.load())
    np.testing.assert_array_equal(back["cluster"].values, footprints)
    assert set(np.unique(footprints)) == set(range(len(table) + 1))
    assert back.attrs["threshold"] == scores.attrs["threshold_auto"]


def test_nms_uses_true_distances_far_from_the_grid_origin():
    """Two summits 1.4 km apart on one meridian at 45°N, near column 86,000 of a global 15″ grid: one seamount."""
    step = 1 / 240
    col, lat = 86_000, 45.0
    lon = -180 + step * col
    coords = {"y": -90 + step / 2 + step * np.arange(43_200), "x": -180 + step * np.arange(86_400)}
    scores = xr.Dataset(coords=coords, attrs={"geographic": 1, "crs": WGS84_WKT})
    table = pd.DataFrame({"row": [10_800, 10_801], "col": [col, col], "x": [lon, lon], "y": [lat, lat + 1.4 / KM_PER_DEGREE],
                          "score": [0.9, 0.8], "height_m": [1000.0, 900.0], "basal_radius_km": [4.0, 4.0]})
    assert len(suppress_duplicates(table, scores, separation_km=6.0)) == 1
    table.loc[1, "x"] = lon + 10.0 / (KM_PER_DEGREE * math.cos(math.radians(lat)))  # 10 km east: two
    assert len(suppress_duplicates(table, scores, separation_km=6.0)) == 2


def test_secondary_tops_are_judged_in_km_at_their_own_latitude():
    """Two tops of one edifice 1.4 km apart on one meridian near column 86,000 of a global 15″ grid at
    45°N: absolute column × each row's own scale would put them kilometres apart east-west."""
    from seamountae.morphology import secondary

    step = 1 / 240
    lat = 45.0 + step * np.arange(6)
    dx = step * KM_PER_DEGREE * np.cos(np.radians(lat))
    z = np.full((6, 86_010), -4000.0, np.float32)
    z[1:5, 86_000] = [-2000.0, -2050.0, -2050.0, -2001.0]  # a narrow ridge-top edifice, two tops 3 rows apart
    table = pd.DataFrame({"row": [1, 4], "col": [86_000, 86_000], "summit_m": [-2000.0, -2001.0],
                          "height_m": [2000.0, 1999.0], "basal_radius_km": [0.7, 0.7]})
    assert secondary(z, table, step * KM_PER_DEGREE, dx[[1, 4]], 0.25).tolist() == [False, True]


def global_band_scores(summit_col):
    """A score dataset for a 2′ global band, 2° high, with one seamount whose summit is at `summit_col`."""
    step = 1 / 30
    x = -180 + step / 2 + step * np.arange(10800)
    y = -1 + step / 2 + step * np.arange(60)
    lat = np.radians(y)[:, None]
    dlon = (x[None, :] - x[summit_col] + 180.0) % 360.0 - 180.0  # degrees east of the summit, across ±180°
    east, north = dlon * KM_PER_DEGREE * np.cos(lat), (y[:, None] - y[30]) * KM_PER_DEGREE
    elevation = (BASE_M + render_seamount(east, north, 1500.0, 10.0, "gaussian")).astype(np.float32)
    grid = xr.DataArray(elevation, dims=("y", "x"), coords={"y": y, "x": x}, attrs={"geographic": 1, "crs": WGS84_WKT})
    table = find_candidates(grid, RULES)
    table["score"] = 0.9
    for name in MODEL_COLUMNS:
        table[name] = np.nan
    table = table.assign(**shape_columns(np.zeros((len(table), 0)), None))  # a model without shape classes
    dims = ("y", "x")
    ds = xr.Dataset({"elevation": (dims, elevation), "score": (("level", *dims), np.zeros((1, *elevation.shape), np.float32))},
                    coords={"y": y, "x": x},
                    attrs={"seamountae_kind": "score", "patch_km": PATCH_KM, "patch_px": 16, "stride_px": 2,
                           "geographic": 1, "crs": WGS84_WKT, "threshold_auto": AUTO,
                           "candidate_rules": json.dumps(RULES.as_meta())})
    return ds.merge(candidates_dataset(table))


def test_a_seamount_on_the_antimeridian_is_one_seamount_measured_whole(tmp_path):
    """Straddling ±180° on a global grid, a seamount is found once, measured and outlined as it is at 0°."""
    seam, middle = global_band_scores(0), global_band_scores(5400)
    # Searched in tiles of columns, the seam's tiles read across it: the same candidates.
    grid = seam["elevation"].assign_attrs(geographic=1, crs=WGS84_WKT)
    tiles = pd.concat([t for c in range(0, 10800, 2700) if len(t := find_candidates(grid, RULES, cols=slice(c, c + 2700)))])
    pd.testing.assert_frame_equal(tiles.sort_values(["row", "col"]).reset_index(drop=True), find_candidates(grid, RULES))
    (a, footprint_a), (b, footprint_b) = detect(seam, threshold=0.5), detect(middle, threshold=0.5)
    assert len(a) == len(b) == 1
    for name in ("height_m", "basal_radius_km", "summit_depth_m", "lat", "closure", "elongation"):
        assert a[name].iloc[0] == pytest.approx(b[name].iloc[0], rel=1e-4, abs=1e-6), name
    assert a["lon"].iloc[0] == pytest.approx(-180 + 1 / 60) and b["lon"].iloc[0] == pytest.approx(1 / 60)
    # The outline runs across the seam, onto both edges of the grid, and is the same shape.
    assert footprint_a[30, 0] == 1 and footprint_a[30, -1] == 1
    np.testing.assert_array_equal(np.roll(footprint_a, 5400, axis=1), footprint_b)
    # Streamed from a score file, the footprints are written across the seam the same way.
    write_netcdf(georeferenced(seam, seam["elevation"].assign_attrs(geographic=1, crs=WGS84_WKT)), tmp_path / "seam.nc")
    ok(run_cli(["detect", str(tmp_path / "seam.nc"), "-o", str(tmp_path / "det.nc"), "--threshold", "0.5"]))
    from seamountae.grid import from_cf_dataset

    with xr.open_dataset(tmp_path / "det.nc") as det:
        np.testing.assert_array_equal(from_cf_dataset(det.load())["cluster"].values, footprint_a)
    # Exported, its outline is cut at the antimeridian into two rings (RFC 7946 §3.1.9), which add up
    # to the outline of the same seamount at 0°.
    ok(run_cli(["export", str(tmp_path / "det.nc"), "-o", str(tmp_path / "s.geojson"), "--footprints", str(tmp_path / "f.geojson")]))
    write_netcdf(georeferenced(middle, middle["elevation"].assign_attrs(geographic=1, crs=WGS84_WKT)), tmp_path / "mid.nc")
    ok(run_cli(["detect", str(tmp_path / "mid.nc"), "-o", str(tmp_path / "mid_det.nc"), "--threshold", "0.5"]))
    ok(run_cli(["export", str(tmp_path / "mid_det.nc"), "-o", str(tmp_path / "m.geojson"), "--footprints", str(tmp_path / "mf.geojson")]))
    (cut,), (whole,) = (json.loads((tmp_path / name).read_text())["features"] for name in ("f.geojson", "mf.geojson"))
    assert cut["geometry"]["type"] == "MultiPolygon" and whole["geometry"]["type"] == "Polygon"
    west, east = (np.array(part[0]) for part in cut["geometry"]["coordinates"])
    assert west[:, 0].max() == 180.0 and west[:, 0].min() > 179 and east[:, 0].min() == -180.0 and east[:, 0].max() < -179

    def area(ring):
        return 0.5 * np.sum(ring[:-1, 0] * ring[1:, 1] - ring[1:, 0] * ring[:-1, 1])

    assert area(west) > 0 and area(east) > 0  # counter-clockwise, both
    assert area(west) + area(east) == pytest.approx(area(np.array(whole["geometry"]["coordinates"][0])), rel=1e-9)


# (east km, north km, height m, basal radius km): a close pair east-west (one seamount: 4 km apart,
# inside the 6 km separation), a lone seamount, and a pair 9 km apart east-west (two seamounts).
HIGH_LATITUDE_SHAPES = [(-15.0, 0.0, 900.0, 1.5), (-11.0, 0.0, 700.0, 1.5), (15.0, 10.0, 1000.0, 4.0),
                        (10.0, -15.0, 800.0, 2.0), (19.0, -15.0, 750.0, 2.0)]


def detected_at_latitude(lat0):
    """HIGH_LATITUDE_SHAPES on an 80 km square of a 15″ lon/lat grid centred at (0°, lat0), detected
    with every candidate scored 0.9: the seamounts' (east km, north km, height, radius)."""
    step, half_km = 1 / 240, 40.0
    lat = lat0 + step * np.arange(-round(half_km / KM_PER_DEGREE / step), round(half_km / KM_PER_DEGREE / step) + 1)
    kx = KM_PER_DEGREE * np.cos(np.radians(lat0))
    lon = step * np.arange(-round(half_km / kx / step), round(half_km / kx / step) + 1)
    east = lon[None, :] * KM_PER_DEGREE * np.cos(np.radians(lat[:, None]))
    north = (lat[:, None] - lat0) * KM_PER_DEGREE
    elevation = np.full(east.shape, BASE_M)
    for e, n, height, radius in HIGH_LATITUDE_SHAPES:
        elevation = elevation + render_seamount(east - e * np.cos(np.radians(lat[:, None])) / np.cos(np.radians(lat0)),
                                                north - n, height, radius, "gaussian")
    grid = xr.DataArray(elevation.astype(np.float32), dims=("y", "x"), coords={"y": lat, "x": lon},
                        attrs={"geographic": 1, "crs": WGS84_WKT})
    table = find_candidates(grid, RULES)
    table["score"] = 0.9
    for name in MODEL_COLUMNS:
        table[name] = np.nan
    table = table.assign(**shape_columns(np.zeros((len(table), 0)), None))  # a model without shape classes
    ds = xr.Dataset({"elevation": grid}, attrs={"seamountae_kind": "score", "geographic": 1, "crs": WGS84_WKT,
                                                "threshold_auto": AUTO}).merge(candidates_dataset(table))
    found, _ = detect(ds, threshold=0.5)
    found = found.assign(east=found["lon"] * kx, north=(found["lat"] - lat0) * KM_PER_DEGREE)
    return found.sort_values(["east", "north"]).reset_index(drop=True)[["east", "north", "height_m", "basal_radius_km"]]


def test_detection_at_70n_behaves_as_at_the_equator_on_the_same_shapes():
    """Separations, pruning and measures are in km: a lon/lat grid's cells three times narrower
    east-west at 70°N find the same seamounts, at the same places, with the same measures."""
    equator, north = detected_at_latitude(0.0), detected_at_latitude(70.0)
    assert len(equator) == len(north) == 4
    np.testing.assert_allclose(north[["east", "north"]], equator[["east", "north"]], atol=0.5)  # km: about a cell
    np.testing.assert_allclose(north[["height_m", "basal_radius_km"]], equator[["height_m", "basal_radius_km"]], rtol=0.1)


def test_overlapping_footprints_give_the_shared_cells_to_the_better_seamount():
    """Drawn in any order, a cell both footprints cover carries the id of the first seamount (best score)."""
    from seamountae.detection import label_footprints, select

    # Two seamounts 11 km apart east-west: the western one, drawn first, is the second in score
    # order, so the order of drawing and of ids differ.
    bumps = [(50, 60, 1500.0, 9.0, 0.6), (49, 67, 1400.0, 9.0, 0.9)]
    table, footprints = detect(score_dataset(bumps), threshold=0.5, min_separation_km=6.0)
    assert len(table) == 2 and table["score"].tolist() == [0.9, 0.6]
    grid = score_dataset(bumps)["elevation"].assign_attrs(geographic=1, crs=WGS84_WKT)
    chosen = select(score_dataset(bumps), threshold=0.5, min_separation_km=6.0)
    masks = []
    for k in range(2):  # each footprint alone
        alone = np.zeros(footprints.shape, np.int32)
        label_footprints(alone, chosen.iloc[[k]], grid)
        masks.append(alone > 0)
    shared = masks[0] & masks[1]
    assert shared.any() and (footprints[shared] == 1).all()
    assert (footprints[masks[1] & ~masks[0]] == 2).all()


# --------------------------------------------------------------------------------- the map detector


def map_scores(discs, relief_m=100.0):
    """The two-bump score dataset with a two-level score map: each disc (row, col, radius in cells,
    score) scores on level 1, everything else 0.05; relief `relief_m` everywhere."""
    ds = score_dataset()
    rows, cols = np.indices(SHAPE)
    level = np.full(SHAPE, 0.05, np.float32)
    for row, col, radius, score in discs:
        level[np.hypot(rows - row, cols - col) <= radius] = score
    maps = np.stack([np.full(SHAPE, 0.05, np.float32), level])
    return ds.drop_vars("score").assign(score=(("level", "y", "x"), maps),
                                        relief_m=(("level", "y", "x"), np.full(maps.shape, relief_m, np.float32)))


def test_map_gives_one_seamount_per_cluster_at_its_highest_cell():
    # A cluster around bump A, one off-centre over bump B, one on the flat plain (no edifice to measure).
    scores = map_scores([(40, 40, 6, 0.9), (68, 97, 5, 0.7), (15, 120, 4, 0.8)])
    table, footprints = detect(scores, threshold=0.6, method="map")
    assert len(table) == 2
    a, b = by_position(table).itertuples()
    for found, (row, col, height, _, _) in ((a, BUMP_A), (b, BUMP_B)):
        assert (found.lon, found.lat) == pytest.approx(cell_lonlat(row, col), abs=1e-9)
        assert found.height_m == pytest.approx(height, rel=0.05)
    assert (a.score, b.score) == pytest.approx((0.9, 0.7))  # the cluster's best cell, not the candidate's score
    assert set(np.unique(footprints)) == {0, 1, 2}


def test_map_threshold_and_relief_decide_which_cells_cluster():
    discs = [(40, 40, 6, 0.9), (68, 97, 5, 0.7)]
    assert len(detect(map_scores(discs), threshold=0.8, method="map")[0]) == 1
    # The auto level is the map's own (0.5), not the model's candidate threshold.
    strict_model = map_scores(discs).assign_attrs(threshold_auto=0.95)
    assert len(detect(strict_model, threshold="auto", method="map")[0]) == 2
    # Cells whose patch centre does not stand above its ring are no seamount, however well reconstructed.
    assert detect(map_scores(discs, relief_m=-1.0), threshold=0.6, method="map")[0].empty


def test_map_measures_a_summit_no_candidate_holds():
    scores = map_scores([(40, 40, 6, 0.9)])
    keep = scores["candidate_row"].values != BUMP_A[0]
    scores = scores.isel(candidate=np.flatnonzero(keep))  # bump A's candidate dropped from the table
    (found,) = detect(scores, threshold=0.6, method="map")[0].itertuples()
    assert found.height_m == pytest.approx(BUMP_A[2], rel=0.05) and math.isnan(found.error)


def test_cli_detect_method_map_and_a_bad_method(tmp_path):
    scores = map_scores([(40, 40, 6, 0.9), (68, 97, 5, 0.7)])
    path = tmp_path / "score.nc"
    write_netcdf(georeferenced(scores, scores["elevation"].assign_attrs(geographic=1, crs=WGS84_WKT)), path)
    ok(run_cli(["detect", path, "--method", "map", "--threshold", "0.8", "-o", tmp_path / "det.nc"]))
    with xr.open_dataset(tmp_path / "det.nc") as ds:
        assert ds.sizes["seamount"] == 1 and ds.attrs["threshold"] == 0.8
    result = run_cli(["detect", path, "--method", "peaks", "-o", tmp_path / "bad.nc"])
    assert result.exit_code == 1 and "method" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "bad.nc").exists()
