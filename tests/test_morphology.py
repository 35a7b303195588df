"""Measuring edifices: height, half-height basal radius, closure and elongation, own-scale windows, summits, secondary tops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from seamountae.candidates import CandidateRules, find_candidates
from seamountae.morphology import describe, find_summits, footprint, measure, secondary
from seamountae.synth import render_seamount

BASE = -4000.0


def terrain(*features, n=161, km=1.0):
    """An n x n grid of `km` cells, centre at (0, 0): BASE plus render_seamount(**feature) at (x, y) km."""
    c = (np.arange(n) - n // 2) * km
    xx, yy = np.meshgrid(c, c)
    z = np.full((n, n), BASE)
    for f in features:
        f = dict(f)
        x0, y0 = f.pop("x", 0.0), f.pop("y", 0.0)
        z = z + render_seamount(xx - x0, yy - y0, **f)
    return z.astype(np.float32)


CENTRE = 80


@pytest.mark.parametrize("shape, radius_factor", [("cone", 1.0), ("polynomial", 1.0), ("parabolic", 1.41), ("gaussian", 0.78)])
def test_basal_radius_is_twice_the_half_height_radius(shape, radius_factor):
    z = terrain({"height_m": 1500.0, "radius_km": 10.0, "shape": shape})
    found = measure(z, CENTRE, CENTRE, 1.0, 1.0, 60.0)
    assert found["height_m"] == pytest.approx(1500.0, rel=0.01)
    assert found["base_m"] == pytest.approx(BASE, abs=5.0)
    assert found["basal_radius_km"] == pytest.approx(10.0 * radius_factor, rel=0.1)
    assert found["closure"] == 1.0 and found["elongation"] < 0.1


def test_own_scale_window_follows_the_edifice():
    small, large = (describe(terrain({"height_m": 1200.0, "radius_km": r, "shape": "cone"}), CENTRE, CENTRE, 1.0, 1.0,
                             48.0, 12.0, 150.0, 6.0) for r in (5.0, 12.0))
    assert small["window_km"] == pytest.approx(6 * small["basal_radius_km"], rel=0.06)
    assert large["window_km"] / small["window_km"] == pytest.approx(12.0 / 5.0, rel=0.15)
    clipped = describe(terrain({"height_m": 1200.0, "radius_km": 12.0, "shape": "cone"}), CENTRE, CENTRE, 1.0, 1.0,
                       48.0, 12.0, 40.0, 6.0)
    assert clipped["window_km"] == 40.0  # kept within the bounds


def test_a_ridge_crest_is_elongated_and_does_not_close():
    ridge = terrain({"height_m": 1200.0, "radius_km": 12.0, "shape": "gaussian", "azimuth_deg": 30.0, "ellipticity": 0.96})
    cone = terrain({"height_m": 1200.0, "radius_km": 8.0, "shape": "cone"})
    r = describe(ridge, CENTRE, CENTRE, 1.0, 1.0, 48.0, 24.0, 96.0, 6.0)
    c = describe(cone, CENTRE, CENTRE, 1.0, 1.0, 48.0, 24.0, 96.0, 6.0)
    assert r["elongation"] > 0.6 > 0.1 > c["elongation"]
    assert r["closure"] <= 0.9 < c["closure"] == 1.0  # along its strike the crest stays high


def test_a_narrow_ridge_between_the_rays_still_shows():
    """A crest thinner than the gap between two directions (here at 11° off both) is seen by its sector."""
    # 60 km long, 2 km wide (semi-axes): radius sqrt(60·2), 1 − minor/major.
    ridge = terrain({"height_m": 1000.0, "radius_km": 120**0.5, "shape": "gaussian", "azimuth_deg": 11.25,
                     "ellipticity": 1 - 2 / 60})
    found = measure(ridge, CENTRE, CENTRE, 1.0, 1.0, 30.0)
    assert found["closure"] < 1.0 and found["elongation"] > 0.6


def test_height_is_above_the_surroundings_on_a_slope():
    n = 161
    slope = np.broadcast_to((np.arange(n) - n // 2) * 10.0, (n, n))  # 10 m per km eastwards
    z = terrain({"height_m": 1000.0, "radius_km": 6.0, "shape": "cone"}) + slope
    found = measure(z, CENTRE, CENTRE, 1.0, 1.0, 40.0)
    assert found["height_m"] == pytest.approx(1000.0, rel=0.05)


def test_missing_cells_are_measured_from_the_summit():
    z = terrain({"height_m": 1000.0, "radius_km": 6.0, "shape": "cone"})
    z[CENTRE, CENTRE + 7] = np.nan
    assert measure(z, CENTRE, CENTRE, 1.0, 1.0, 40.0)["missing_km"] == pytest.approx(7.0)
    assert measure(z, CENTRE, CENTRE, 1.0, 1.0, 10.0)["missing_km"] == np.inf  # outside the window


def test_anisotropic_cells_measure_in_km():
    """Cells half as wide east-west (as at 60°N): the same seamount gives the same numbers."""
    square = terrain({"height_m": 1500.0, "radius_km": 8.0, "shape": "cone"})
    c = np.arange(161) - 80
    xx, yy = np.meshgrid(0.5 * np.arange(321) - 80, c)
    narrow = (BASE + render_seamount(xx, yy, 1500.0, 8.0, "cone")).astype(np.float32)
    a = measure(square, 80, 80, 1.0, 1.0, 48.0)
    b = measure(narrow, 80, 160, 1.0, 0.5, 48.0)
    assert a["basal_radius_km"] == pytest.approx(8.0, rel=0.1) and b["basal_radius_km"] == pytest.approx(8.0, rel=0.1)
    assert b["area_km2"] == pytest.approx(a["area_km2"], rel=0.05)
    assert b["elongation"] < 0.1


def test_footprint_is_the_edifice_above_a_tenth_of_its_height():
    z = terrain({"height_m": 1000.0, "radius_km": 10.0, "shape": "cone"})
    found = measure(z, CENTRE, CENTRE, 1.0, 1.0, 60.0)
    rows, cols, mask = footprint(z, CENTRE, CENTRE, 1.0, 1.0, found["base_m"], found["height_m"], found["basal_radius_km"])
    assert mask.sum() == pytest.approx(np.pi * 9.0**2, rel=0.1)  # a cone stands above 10 % out to 0.9 r
    assert mask.sum() == pytest.approx(found["area_km2"])
    assert z[rows, cols][mask].min() >= BASE + 100.0


def test_summits_are_local_maxima_within_the_separation():
    z = terrain({"height_m": 1500.0, "radius_km": 6.0, "shape": "cone", "x": -20.0},
                {"height_m": 900.0, "radius_km": 6.0, "shape": "cone", "x": 20.0})
    peaks = find_summits(z, 1.0, 1.0, 6.0)
    assert [tuple(p) for p in peaks[:2]] == [(CENTRE, CENTRE - 20), (CENTRE, CENTRE + 20)]  # highest first


def test_a_flat_top_is_one_candidate():
    z = terrain({"height_m": 1500.0, "radius_km": 15.0, "shape": "guyot", "flattening": 0.5})
    c = (np.arange(z.shape[0]) - CENTRE) * 1000.0
    grid = xr.DataArray(z, dims=("y", "x"), coords={"y": c, "x": c}, attrs={"geographic": 0, "crs": ""})
    assert len(np.argwhere(z == z.max())) > 100 and len(find_summits(z, 1.0, 1.0, 6.0)) > 1  # a wide flat top
    found = find_candidates(grid, CandidateRules(patch_km=48.0, window_km=(24.0, 96.0)))
    assert len(found) == 1 and found["summit_m"][0] == z.max()


def test_a_second_top_on_one_edifice_is_secondary():
    shield = {"height_m": 2000.0, "radius_km": 20.0, "shape": "parabolic"}
    z = terrain(shield, {"height_m": 150.0, "radius_km": 2.0, "shape": "cone", "x": 8.0})
    two = terrain({"height_m": 1500.0, "radius_km": 6.0, "shape": "cone", "x": -9.0},
                  {"height_m": 1200.0, "radius_km": 6.0, "shape": "cone", "x": 9.0})

    def table(z, cols):
        rows = []
        for col in cols:
            m = measure(z, CENTRE, col, 1.0, 1.0, 48.0)
            rows.append({"row": CENTRE, "col": col, "summit_m": float(z[CENTRE, col]), **m})
        return pd.DataFrame(rows)

    top = CENTRE + int(np.argmax(z[CENTRE, CENTRE:CENTRE + 20])) if z[CENTRE, CENTRE + 8] > z[CENTRE, CENTRE] else CENTRE
    on_shield = table(z, [CENTRE, CENTRE + 8])
    assert secondary(z, on_shield, 1.0, np.ones(2), 0.25).tolist() in ([False, True], [True, False])
    assert not secondary(two, table(two, [CENTRE - 9, CENTRE + 9]), 1.0, np.ones(2), 0.25).any()  # a deep saddle
    assert top >= CENTRE


@pytest.mark.parametrize("dy_km, dx_km, separation_km", [(0.463, 0.463, 6.0), (1.85, 0.6, 6.0), (1.0, 1.0, 1.0),
                                                         (0.5, 3.0, 4.0)])
def test_disc_maximum_is_the_footprint_maximum_filter(dy_km, dx_km, separation_km):
    from scipy import ndimage

    from seamountae.morphology import _disc_maximum

    rng = np.random.default_rng(0)
    values = rng.normal(size=(83, 151)).astype(np.float32)
    values[rng.random(values.shape) < 0.1] = -np.inf  # missing cells, as find_summits marks them
    ry, rx = max(1, int(round(separation_km / dy_km))), max(1, int(round(separation_km / dx_km)))
    yy, xx = np.ogrid[-ry : ry + 1, -rx : rx + 1]
    disc = np.hypot(yy * dy_km, xx * dx_km) <= max(separation_km, dy_km, dx_km)
    expected = ndimage.maximum_filter(values, footprint=disc, mode="constant", cval=-np.inf)
    np.testing.assert_array_equal(_disc_maximum(values, disc), expected)
    for shape in ((2, 2), (1, 40), (3, 1)):  # grids smaller than the disc
        small = values[: shape[0], : shape[1]]
        expected = ndimage.maximum_filter(small, footprint=disc, mode="constant", cval=-np.inf)
        np.testing.assert_array_equal(_disc_maximum(small, disc), expected)


def test_summits_found_in_strips_equal_those_of_the_whole_array(monkeypatch):
    from seamountae import morphology

    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 140)).cumsum(0).cumsum(1).astype(np.float32)
    z[rng.random(z.shape) < 0.02] = np.nan
    monkeypatch.setattr(morphology, "SUMMIT_STRIP_ROWS", 10**9)
    whole = find_summits(z, 0.463, 0.3, 6.0)
    for rows in (7, 64):  # strips thinner and thicker than the disc
        monkeypatch.setattr(morphology, "SUMMIT_STRIP_ROWS", rows)
        np.testing.assert_array_equal(find_summits(z, 0.463, 0.3, 6.0), whole)
    assert len(whole) > 20


def test_footprint_labelled_in_its_box_equals_the_whole_windows_labelling():
    from scipy import ndimage

    from seamountae.morphology import FOOTPRINT_LEVEL, FOOTPRINT_REACH, _footprint

    rng = np.random.default_rng(5)
    for trial in range(30):
        win = ndimage.gaussian_filter(rng.normal(size=(61, 75)), 3.0) * 1000.0
        win[rng.random(win.shape) < 0.03] = np.nan
        r, c = int(rng.integers(5, 56)), int(rng.integers(5, 70))
        win[r, c] = np.nanmax(win) + 10.0
        dy, dx = 1.8, float(rng.uniform(0.9, 1.8))
        north = (np.arange(61)[:, None] - r) * dy
        east = (np.arange(75)[None, :] - c) * dx
        dist = np.hypot(north, east)
        base, height, radius = -200.0, float(win[r, c]) + 200.0, float(rng.uniform(2.0, 40.0))
        with np.errstate(invalid="ignore"):
            parts, _ = ndimage.label((win >= base + FOOTPRINT_LEVEL * height) & (dist <= FOOTPRINT_REACH * radius))
        assert np.array_equal(_footprint(win, r, c, dist, dy, dx, base, height, radius), parts == parts[r, c]), trial
