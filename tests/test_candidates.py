"""The candidate search's rules for edifices that are no plain cone: islands, flank cones, craters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seamountae.candidates import PROMINENCE, CandidateRules, find_candidates
from seamountae.evaluation import match_catalogues
from seamountae.geometry import KM_PER_DEGREE, GridGeometry, haversine_km
from seamountae.grid import canonical_grid
from seamountae.morphology import describe, secondary, small_islands
from seamountae.synth import render_seamount

RULES = CandidateRules(patch_km=48.0, window_km=(24.0, 150.0), radius_ratio=6.0, min_height_m=300.0,
                       separation_km=6.0, missing_buffer_km=5.0)
FLOOR_M = -4000.0


def lonlat_grid(relief, lon0=-30.0, lat0=0.0, n=241, spacing_deg=1 / 60, islands=True):
    """A lon/lat grid of n × n cells centred on (lon0, lat0) whose elevation is FLOOR_M + relief(east_km,
    north_km); land (above 0 m) is masked as the readers do."""
    lon = lon0 + (np.arange(n) - n // 2) * spacing_deg
    lat = lat0 + (np.arange(n) - n // 2) * spacing_deg
    east = (lon[None, :] - lon0) * KM_PER_DEGREE * np.cos(np.radians(lat[:, None]))
    north = np.broadcast_to((lat[:, None] - lat0) * KM_PER_DEGREE, east.shape)
    grid = canonical_grid(FLOOR_M + relief(east, north), lon, lat, geographic=True)
    return grid.assign_attrs(islands=int(islands))


def volcano(height_m, radius_km, shape="gaussian", east_km=0.0, north_km=0.0, **kw):
    return lambda e, n: render_seamount(e - east_km, n - north_km, height_m, radius_km, shape, **kw)


def nearest(table, lon, lat):
    d = haversine_km(table["x"].to_numpy(float), table["y"].to_numpy(float), lon, lat)
    return table.iloc[int(np.argmin(d))], float(d.min())


@pytest.mark.parametrize("lat0", [0.0, 60.0])
def test_a_small_island_is_the_top_of_a_seamount_that_breaks_the_surface(lat0):
    grid = lonlat_grid(volcano(4600.0, 20.0), lat0=lat0)  # 600 m of it above the sea: a small island
    assert np.isnan(grid.values).any()
    found = find_candidates(grid, RULES)
    top, d = nearest(found, -30.0, lat0)
    assert d < 5.0 and bool(top["breaks_surface"])
    assert top["summit_m"] == 0.0 and top["height_m"] == pytest.approx(-FLOOR_M, rel=0.05)  # measured from the sea floor
    # Its centre is the island's middle, wherever on its coast the summit cell lies.
    assert haversine_km(top["centre_x"], top["centre_y"], -30.0, lat0) < 1.5
    # --no-islands: land is missing data, and nothing within missing_buffer_km of it is a candidate.
    unislanded = find_candidates(grid.assign_attrs(islands=0), RULES)
    assert not len(unislanded) or nearest(unislanded, -30.0, lat0)[1] > 10.0


def test_an_island_on_the_antimeridian_is_found_once():
    """A regional grid across ±180° (longitudes past 180 as GMT writes them): the island is one candidate."""
    grid = lonlat_grid(volcano(4600.0, 20.0), lon0=180.0)
    found = find_candidates(grid, RULES)
    near = found[haversine_km(found["x"].to_numpy(float), found["y"].to_numpy(float), 180.0, 0.0) < 20.0]
    assert len(near) == 1 and bool(near["breaks_surface"].iloc[0])
    assert haversine_km(near["centre_x"].iloc[0], near["centre_y"].iloc[0], 180.0, 0.0) < 1.5


def test_a_large_landmass_and_a_gap_in_the_data_stay_missing():
    """A continent (land far larger than ISLAND_MAX_KM2) and a survey gap keep candidates away; the
    same gap with a shallow coast would be an island."""
    coast = lambda e, n: np.where(e > 60.0, 4100.0, 0.0)  # land east of 60 km: a coast along the whole grid
    beside_land = lonlat_grid(lambda e, n: coast(e, n) + volcano(1500.0, 8.0, east_km=58.0)(e, n))
    assert not len(found := find_candidates(beside_land, RULES)) or nearest(found, -30 + 58 / KM_PER_DEGREE, 0.0)[1] > 10
    assert not found["breaks_surface"].any() if len(found) else True
    values = lonlat_grid(volcano(1500.0, 8.0)).values.copy()
    values[110:118, 130:138] = np.nan  # a gap on the flank, deep water all round it
    dy = dx = KM_PER_DEGREE / 60
    assert not small_islands(values, dy, np.full(values.shape[0], dx), 2000.0).any()
    shallow = np.full((20, 20), -30.0, np.float32)
    shallow[8:12, 8:12] = np.nan
    assert small_islands(shallow, dy, np.full(20, dx), 2000.0)[8:12, 8:12].all()


def test_a_flank_cone_is_a_seamount_of_its_own():
    """A 1,100 m cone on the flank of a 4,000 m edifice stands more than min_height_m above the ground
    joining it to the host's top (though less than PROMINENCE × its height): a candidate of its own."""
    grid = lonlat_grid(lambda e, n: volcano(4000.0, 25.0, "cone")(e, n) + volcano(1100.0, 4.0, "cone", east_km=20.0)(e, n),
                       n=301, spacing_deg=0.5 / 60)
    found = find_candidates(grid, RULES)
    host, d_host = nearest(found, -30.0, 0.0)
    cone, d_cone = nearest(found, -30.0 + 20.0 / KM_PER_DEGREE, 0.0)
    assert d_host < 3.0 and d_cone < 3.0 and cone["height_m"] > 300.0
    # By the prominence fraction alone it would be the host's secondary top.
    pair = pd.DataFrame([host, cone])
    cell_km = KM_PER_DEGREE / 120
    assert secondary(grid.values, pair, cell_km, np.full(2, cell_km), PROMINENCE).tolist() == [False, True]
    assert secondary(grid.values, pair, cell_km, np.full(2, cell_km), PROMINENCE, RULES.min_height_m).tolist() == [False, False]


def test_a_crater_is_placed_at_its_centre_not_on_its_rim():
    grid = lonlat_grid(volcano(2000.0, 20.0, "crater", flattening=0.3))
    top, _ = nearest(find_candidates(grid, RULES), -30.0, 0.0)
    summit_km = haversine_km(top["x"], top["y"], -30.0, 0.0)
    assert summit_km > 3.0  # on the rim, 6 km out
    assert haversine_km(top["centre_x"], top["centre_y"], -30.0, 0.0) < 1.0
    # A catalogue that lists it at its centre matches it there, 6 km from the summit.
    found = pd.DataFrame({"lon": [top["x"]], "lat": [top["y"]], "centre_lon": [top["centre_x"]], "centre_lat": [top["centre_y"]]})
    pairs = match_catalogues(found, pd.DataFrame({"lon": [-30.0], "lat": [0.0]}), match_km=2.0)
    assert len(pairs) == 1 and pairs["distance_km"].iloc[0] < 1.0
    assert not len(match_catalogues(found[["lon", "lat"]], pd.DataFrame({"lon": [-30.0], "lat": [0.0]}), match_km=2.0))


def test_candidates_are_measured_as_describe_measures_each_summit():
    # Two cones, one with a crater, on a lon/lat grid (each row its own column width): pruning sees only
    # the settled windows, and the kept candidates are measured whole, as describe does.
    relief = lambda e, n: volcano(1500.0, 12.0, "crater", flattening=0.3)(e, n) + volcano(900.0, 6.0, east_km=45.0, north_km=30.0)(e, n)  # noqa: E731
    grid = lonlat_grid(relief, lat0=40.0)
    found = find_candidates(grid, RULES)
    assert len(found) >= 2
    geometry = GridGeometry.of(grid)
    for _, row in found.iterrows():
        dy_km, dx_km = geometry.row_km(int(row["row"]))
        alone = describe(grid.values, int(row["row"]), int(row["col"]), dy_km, float(dx_km), RULES.patch_km,
                         *RULES.window_km, RULES.radius_ratio)
        for name in ("base_m", "height_m", "basal_radius_km", "window_km", "area_km2", "closure", "elongation"):
            assert row[name] == pytest.approx(alone[name], rel=1e-9), name
