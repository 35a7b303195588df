import json

import numpy as np
import pandas as pd
import pytest

from seamountae.errors import SeamountaeError
from seamountae.evaluation import evaluate, format_report, match_catalogues

KM = 180 / (np.pi * 6371.0)  # degrees of longitude per km on the equator


def cat(lons_km, **columns):
    """Points on the equator at the given east offsets in km."""
    return pd.DataFrame({"lon": np.asarray(lons_km, float) * KM, "lat": 0.0, **columns})


def pairs(matches):
    return sorted(zip(matches["found_index"].tolist(), matches["reference_index"].tolist()))


# ----------------------------------------------------------------------------------------- matching


def test_two_found_near_one_reference_one_match():
    matches = match_catalogues(cat([2.0, 1.0]), cat([0.0]))
    assert pairs(matches) == [(1, 0)]  # the nearer one wins, whatever its order
    assert matches["distance_km"].iloc[0] == pytest.approx(1.0)
    result = evaluate(cat([2.0, 1.0]), cat([0.0]))
    assert (result["true_positives"], result["false_positives"]) == (1, 1)
    assert result["false_detections"][0]["index"] == 0


def test_found_between_two_references_takes_nearer():
    assert pairs(match_catalogues(cat([6.0]), cat([0.0, 10.0]))) == [(0, 1)]
    assert pairs(match_catalogues(cat([4.0]), cat([0.0, 10.0]))) == [(0, 0)]


def test_nearest_first_globally_not_in_found_order():
    # Found 0 is 2 km from R0 and 5 km from R1; found 1 is 1 km from R0 and far from R1.
    # Matching in found order would give (0, R0) and leave found 1 unmatched.
    matches = match_catalogues(cat([2.0, -1.0]), cat([0.0, 7.0]))
    assert pairs(matches) == [(0, 1), (1, 0)]
    assert matches["distance_km"].is_monotonic_increasing


def test_tolerance_fixed_km_and_default():
    assert len(match_catalogues(cat([8.0]), cat([0.0]), match_km=10)) == 1
    assert len(match_catalogues(cat([8.0]), cat([0.0]), match_km=5)) == 0
    assert len(match_catalogues(cat([9.5]), cat([0.0]))) == 1  # default 10 km
    assert len(match_catalogues(cat([10.5]), cat([0.0]))) == 0


def test_tolerance_by_radius_factor_with_floor():
    reference = cat([0.0, 100.0], radius_km=[10.0, 2.0])
    found = cat([4.0, 6.0, 102.5])
    assert pairs(match_catalogues(found, reference, match_radius_factor=0.5)) == [(0, 0), (2, 1)]
    # 6 km is beyond 0.5 x 10 km; the 2 km radius is floored at 3 km, so 3.5 km misses.
    assert pairs(match_catalogues(cat([6.0, 103.5]), reference, match_radius_factor=0.5)) == []
    assert pairs(match_catalogues(cat([6.0]), reference, match_radius_factor=1.0)) == [(0, 0)]


def test_radius_factor_needs_radius_column_and_one_tolerance():
    with pytest.raises(SeamountaeError, match="radius_km"):
        match_catalogues(cat([0.0]), cat([0.0]), match_radius_factor=1.0)
    with pytest.raises(SeamountaeError, match="not both"):
        match_catalogues(cat([0.0]), cat([0.0], radius_km=1.0), match_km=5, match_radius_factor=1.0)
    with pytest.raises(SeamountaeError, match="positive"):
        match_catalogues(cat([0.0]), cat([0.0]), match_km=0)


def test_dateline_points_match():
    found = pd.DataFrame({"lon": [179.99], "lat": [10.0]})
    reference = pd.DataFrame({"lon": [-179.99], "lat": [10.0]})
    matches = match_catalogues(found, reference, match_km=5)
    assert len(matches) == 1 and matches["distance_km"].iloc[0] < 2.5
    # and the 0..360 spelling of the same place
    assert len(match_catalogues(found, pd.DataFrame({"lon": [180.01], "lat": [10.0]}), match_km=5)) == 1


def test_many_points_agree_with_brute_force():
    rng = np.random.default_rng(0)
    found = pd.DataFrame({"lon": rng.uniform(-30, -20, 3000), "lat": rng.uniform(35, 43, 3000)})
    reference = pd.DataFrame({"lon": rng.uniform(-30, -20, 2000), "lat": rng.uniform(35, 43, 2000)})
    matches = match_catalogues(found, reference, match_km=8)
    assert matches["found_index"].is_unique and matches["reference_index"].is_unique
    assert (matches["distance_km"] <= 8).all()
    # Brute force nearest-first greedy on the full distance matrix gives the same pairs.
    from seamountae.geometry import haversine_km

    d = haversine_km(found["lon"].to_numpy()[:, None], found["lat"].to_numpy()[:, None],
                     reference["lon"].to_numpy()[None, :], reference["lat"].to_numpy()[None, :])
    f, r = np.nonzero(d <= 8)
    used_f, used_r, expected = set(), set(), []
    for k in np.argsort(d[f, r], kind="stable"):
        if f[k] not in used_f and r[k] not in used_r:
            used_f.add(f[k])
            used_r.add(r[k])
            expected.append((int(f[k]), int(r[k])))
    assert pairs(matches) == sorted(expected) and len(expected) > 100


# --------------------------------------------------------------------------------------- evaluation


def test_min_height_targets_and_precision_counts_non_targets():
    reference = cat([0.0, 100.0, 200.0], grid_relief_m=[1000.0, 300.0, np.nan], height_m=[100.0, 900.0, 900.0],
                    name=["big", "small", "unknown"])
    found = cat([1.0, 101.0, 300.0])
    result = evaluate(found, reference, min_height_m=500)
    assert result["parameters"]["height_column"] == "grid_relief_m"  # preferred over height_m
    assert (result["n_targets"], result["true_positives"], result["false_positives"]) == (1, 2, 1)
    assert result["matched_targets"] == 1
    assert result["precision"] == pytest.approx(2 / 3) and result["recall"] == 1.0
    assert result["f1"] == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))
    assert result["misses"] == []
    # By catalogue height instead, "small" and "unknown" are the targets and "unknown" is missed.
    result = evaluate(found, reference, min_height_m=500, height_column="height_m")
    assert (result["n_targets"], result["matched_targets"]) == (2, 1)
    assert [(m["name"], m["height"]) for m in result["misses"]] == [("unknown", 900.0)]
    assert result["false_detections"][0]["lon"] == pytest.approx(300 * KM)


def test_no_min_height_all_reference_are_targets():
    result = evaluate(cat([0.0]), cat([0.0, 50.0]))
    assert (result["n_targets"], result["recall"], result["precision"]) == (2, 0.5, 1.0)


def test_recall_by_height_bands():
    # 1000 m sits on an edge: bands are [low, high), so it belongs to 1000-1500.
    reference = cat([0, 100, 200, 300, 400], grid_relief_m=[600.0, 700.0, 1000.0, 2500.0, 300.0])
    result = evaluate(cat([0, 200]), reference)
    bands = {b["band"]: b for b in result["recall_by_height"]}
    assert list(bands) == ["500-1000", "1000-1500", "1500-2000", "2000+"]
    assert (bands["500-1000"]["n"], bands["500-1000"]["found"], bands["500-1000"]["recall"]) == (2, 1, 0.5)
    assert bands["1000-1500"]["recall"] == 1.0
    assert bands["1500-2000"]["n"] == 0 and bands["1500-2000"]["recall"] is None
    assert (bands["2000+"]["n"], bands["2000+"]["recall"]) == (1, 0.0)


@pytest.mark.parametrize("n_found, n_reference", [(0, 2), (2, 0), (0, 0)])
def test_empty_catalogues(n_found, n_reference):
    found = cat(np.arange(n_found) * 100.0)
    reference = cat(np.arange(n_reference) * 100.0, height_m=np.full(n_reference, 1000.0))
    result = evaluate(found, reference, min_height_m=500, area_km2=1000.0)
    assert (result["precision"], result["recall"], result["f1"]) == (0.0, 0.0, 0.0)
    assert result["true_positives"] == 0 and result["false_positives"] == n_found
    assert len(result["misses"]) == n_reference and len(result["false_detections"]) == n_found
    json.dumps(result)
    assert "precision" in format_report(result)


def test_false_per_10k_km2_and_json():
    result = evaluate(cat([0.0, 100.0, 200.0, 300.0]), cat([0.0]), area_km2=30000.0)
    assert result["false_positives"] == 3
    assert result["false_per_10k_km2"] == pytest.approx(1.0)
    assert "false_per_10k_km2" not in evaluate(cat([0.0]), cat([0.0]))
    text = json.dumps(result)
    assert json.loads(text)["parameters"]["match_km"] == 10.0


def test_format_report():
    reference = cat([0, 100], grid_relief_m=[600.0, 1200.0])
    text = format_report(evaluate(cat([0, 500]), reference, min_height_m=500, area_km2=20000.0))
    assert "precision 0.500" in text and "recall 0.500" in text and "F1 0.500" in text
    assert "500-1000" in text and "false detections per 10,000 km2: 0.50" in text


def test_a_projected_reference_is_refused_in_one_line():
    found = pd.DataFrame({"lon": [-27.0], "lat": [38.0]})
    projected = pd.DataFrame({"lon": [412_000.0], "lat": [4_205_000.0]})
    with pytest.raises(SeamountaeError, match="reference catalogue: .*not lon/lat.*EPSG:4326"):
        evaluate(found, projected)


# ------------------------------------------------------------------------------ the area searched


def test_region_boxes_wrap_across_the_antimeridian():
    from seamountae.geometry import in_region, parse_region

    lon = np.array([175.0, -175.0, 185.0, 0.0, 179.0])
    lat = np.array([0.0, 0.0, 0.0, 0.0, 20.0])
    expected = [True, True, True, False, False]
    for text in ("170/190/-10/10", "170/-170/-10/10", "-190/-170/-10/10"):  # one box, three spellings
        assert in_region(lon, lat, parse_region(text)).tolist() == expected, text
    assert in_region(lon, lat, parse_region("-180/180/-30/30")).all()
    with pytest.raises(SeamountaeError, match="W/E/S/N"):
        parse_region("170/190/10")


def test_clipping_to_the_searched_grid_keeps_valid_cells_the_match_distance_in():
    from seamountae.grid import canonical_grid

    lon, lat = np.arange(0.0, 2.0, 0.02), np.arange(0.0, 1.0, 0.02)  # ~2.2 km cells
    values = np.full((lat.size, lon.size), -4000.0, np.float32)
    values[20:30, 40:60] = np.nan  # a gap (land) around (1.0°, 0.5°)
    grid = canonical_grid(values, lon, lat, geographic=True)
    reference = pd.DataFrame({"lon": [0.5, 1.0, 1.0, 0.05, 1.5, 60.0], "lat": [0.5, 0.5, 0.62, 0.5, 0.5, 0.5]})
    # open sea | in the gap | ~5 km from the gap | ~5 km from the west edge | open sea | far away
    result = evaluate(reference.iloc[[0]], reference, match_km=3.0, grid=grid)
    assert result["n_reference_inside"] == 4 and result["n_targets"] == 4
    result = evaluate(reference.iloc[[0]], reference, match_km=10.0, grid=grid)
    assert result["n_reference_inside"] == 2  # the two within 10 km of a gap or an edge drop out
    assert [m["index"] for m in result["misses"]] == [4]
    # An entry outside the area still confirms a detection: clipping makes no found seamount false.
    result = evaluate(reference.iloc[[3]], reference, match_km=10.0, grid=grid)
    assert result["true_positives"] == 1 and result["matched_targets"] == 0
    assert "reference: 2 of 6 entries inside the searched grid" in format_report(result)


def _census(path, points):
    """A reference in Kim & Wessel's distributed layout: free text, then tab-separated columns."""
    lines = ["Global Seamount Database from Kim, S.-S., and P. Wessel (2011)", "Col 1: Longitude", "",
             "Longitude\tLatitude\tAzimuth\tMajor\tMinor\tHeight\tID"]
    lines += [f"{lon:.5f}\t{lat:.5f}\t0.0\t20.0\t15.0\t{height:.1f}\tKW-{k:05d}" for k, (lon, lat, height) in enumerate(points)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_evaluate_against_a_global_census_counts_the_searched_grid(tmp_path, detections_file, catalogue_file,
                                                                       grid_file, model_file):
    from conftest import ok, run_cli
    from seamountae.catalogue import read_catalogue

    truth = read_catalogue(catalogue_file)
    far = [(lon, lat, 2000.0) for lon in range(-170, 180, 20) for lat in (-40, 0, 40)]  # the rest of the globe
    census = _census(tmp_path / "KWSMTSv01.txt", [*zip(truth["lon"], truth["lat"], truth["height_m"]), *far])
    ok(run_cli(["export", detections_file, "-o", tmp_path / "found.geojson"]))
    n = len(truth) + len(far)

    report = ok(run_cli(["evaluate", tmp_path / "found.geojson", census])).stdout
    first = report.splitlines()[0]
    assert first.startswith("reference: ") and f"of {n:,} entries inside the searched grid" in first
    inside = int(first.split()[1])
    assert 0 < inside <= len(truth)
    assert f"targets {inside} (all entries)" in report
    unclipped = json.loads(ok(run_cli(["evaluate", tmp_path / "found.geojson", census, "--no-clip", "--json"])).stdout)
    assert unclipped["n_targets"] == n and unclipped["parameters"]["clipped_to"] is None
    boxed = json.loads(ok(run_cli(["evaluate", tmp_path / "found.geojson", census, "--region", "-190/-170/-50/50",
                                   "--json"])).stdout)
    assert boxed["n_targets"] == 6 and boxed["n_reference_inside"] == 6  # lon 170 and -170 (190), three latitudes each

    # The grid moved away: the extent the catalogue records stands in for it, said in a warning.
    d = tmp_path / "moved"
    d.mkdir()
    (d / "grid.nc").write_bytes(grid_file.read_bytes())
    ok(run_cli(["find", d / "grid.nc", "--model", model_file, "--device", "cpu", "-o", d / "found.csv"]))
    (d / "grid.nc").unlink()
    result = ok(run_cli(["evaluate", d / "found.csv", census]))
    assert "not found; clipping the reference to its recorded extent" in result.stderr
    assert f"of {n:,} entries inside region " in result.stdout

    # A catalogue that records no searched grid: one line naming the fixes.
    plain = tmp_path / "plain.csv"
    plain.write_text("lon,lat\n0,0\n")
    failed = run_cli(["evaluate", plain, census])
    assert failed.exit_code != 0 and len(failed.stderr.splitlines()) == 1
    assert "plain.csv" in failed.stderr and "--region" in failed.stderr and "--no-clip" in failed.stderr


def test_a_small_islands_land_counts_as_searched_and_a_gap_does_not():
    """Atolls and island-capped volcanoes are candidates (their land is a seamount's top), so an
    entry on one is inside the searched area; an entry beside a gap in the data is not."""
    from seamountae.grid import canonical_grid

    lon, lat = np.arange(0.0, 2.0, 0.02), np.arange(0.0, 1.0, 0.02)  # ~2.2 km cells
    rr, cc = np.meshgrid(np.arange(lat.size), np.arange(lon.size), indexing="ij")
    island = (rr - 25) ** 2 + (cc - 25) ** 2 <= 9  # ~90 km² around (0.5°, 0.5°), its coast shallow
    values = np.where(np.hypot(rr - 25, cc - 25) <= 6, -20.0, -4000.0).astype(np.float32)
    values[island] = 10.0  # land: masked to NaN on reading
    values[20:30, 70:80] = np.nan  # a survey gap at depth around (1.5°, 0.5°)
    grid = canonical_grid(values, lon, lat, geographic=True)
    reference = pd.DataFrame({"lon": [0.5, 1.5, 1.0], "lat": [0.5, 0.5, 0.5]})
    result = evaluate(reference.iloc[[0]], reference, match_km=10.0, grid=grid)
    assert result["n_reference_inside"] == 2 and [m["index"] for m in result["misses"]] == [2]
    grid.attrs["islands"] = 0  # read with --no-islands: the island is a hole again
    assert evaluate(reference.iloc[[0]], reference, match_km=10.0, grid=grid)["n_reference_inside"] == 1
