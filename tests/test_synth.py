"""Synthetic grids: determinism, the canonical-grid contract, truth, seamount shapes, confounders."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from seamountae.errors import SeamountaeError
from seamountae.geometry import KM_PER_DEGREE
from seamountae.synth import (CONFOUNDERS, CRATER_DEPTH, SCENARIOS, SHAPES, SUMMIT_CEILING_M,
                              TRUTH_COLUMNS, render_seamount, synthesize)

SMALL = (150, 200)  # ~280 x 310 km: room for every feature, fast to build


def cell_km(grid):
    dy = float(grid.y[1] - grid.y[0]) * KM_PER_DEGREE
    return dy * math.cos(math.radians(float(grid.y.mean()))), dy


def cell_km_of_small():
    return cell_km(synthesize(0, n_seamounts=0, shape=SMALL)[0])


def only(seed, confounder, **kw):
    """The relief one confounder adds: its grid minus the bare background (parts draw independent streams)."""
    with_it, _ = synthesize(seed, confounders=(confounder,), n_seamounts=0, **kw)
    bare, _ = synthesize(seed, confounders=(), n_seamounts=0, **kw)
    return (with_it - bare).values.astype(float)


def correlation_length(field, axis):
    """Lag (cells) at which the autocorrelation along an axis first drops below 1/e."""
    f = field - field.mean()
    n = f.shape[axis]
    for lag in range(1, n // 2):
        a, b = np.take(f, range(n - lag), axis=axis), np.take(f, range(lag, n), axis=axis)
        if np.mean(a * b) / f.var() < 1.0 / math.e:
            return lag
    return n // 2


def closed_bumps(grid, inner_km=15.0, outer_km=22.0, relief=500.0):
    """Peaks standing more than `relief` above everything on a ring around them: seamount-like bumps."""
    z = grid.values.astype(float)
    dx, dy = cell_km(grid)
    ny, nx = int(outer_km / dy), int(outer_km / dx)
    yy, xx = np.mgrid[-ny:ny + 1, -nx:nx + 1]
    r = np.hypot(yy * dy, xx * dx)
    ring_max = ndi.maximum_filter(z, footprint=(r >= inner_km) & (r <= outer_km), mode="constant", cval=np.inf)
    peak = z == ndi.maximum_filter(z, footprint=r <= inner_km, mode="nearest")
    return np.argwhere(peak & (z - ring_max > relief))


def local_km(truth, lon, lat):
    kx = KM_PER_DEGREE * np.cos(np.radians(truth.lat.to_numpy()))
    return (lon - truth.lon.to_numpy()) * kx, (lat - truth.lat.to_numpy()) * KM_PER_DEGREE


# --------------------------------------------------------------------------- determinism and contract


def test_same_seed_same_grid_and_truth():
    a, ta = synthesize(3, "fabric", shape=SMALL)
    b, tb = synthesize(3, "fabric", shape=SMALL)
    np.testing.assert_array_equal(a.values, b.values)
    pd.testing.assert_frame_equal(ta, tb)
    c, tc = synthesize(4, "fabric", shape=SMALL)
    assert not np.allclose(a.values, c.values)
    assert not ta[["lon", "lat"]].equals(tc[["lon", "lat"]])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_canonical_grid_contract(scenario):
    grid, truth = synthesize(0, scenario, shape=SMALL, spacing_arcmin=1.0, origin=(-30.0, 30.0))
    assert grid.name == "elevation" and grid.dtype == np.float32 and grid.dims == ("y", "x")
    assert grid.shape == SMALL
    for dim in ("x", "y"):
        coord = grid[dim].values
        assert coord.dtype == np.float64 and np.all(np.diff(coord) > 0)
    np.testing.assert_allclose(grid.x.values[[0, 1]], [-30.0, -30.0 + 1 / 60])
    np.testing.assert_allclose(grid.y.values[[0, 1]], [30.0, 30.0 + 1 / 60])
    assert grid.attrs["units"] == "m" and grid.attrs["geographic"] == 1
    assert "WGS 84" in grid.attrs["crs"] and grid.attrs["source"].startswith("seamountae.synth")
    assert not np.any(grid.values > 0)  # land is NaN
    assert list(truth.columns) == list(TRUTH_COLUMNS)


def test_bad_arguments_are_user_errors():
    for kwargs in ({"scenario": "moon"}, {"confounders": ("fabric", "volcano")}, {"scenario": "empty", "n_seamounts": 3},
                   {"seed": -1}, {"shape": (4, 4)}):
        with pytest.raises(SeamountaeError):
            synthesize(**kwargs)


# --------------------------------------------------------------------------- truth table


def test_truth_inside_grid_sized_and_spaced():
    grid, truth = synthesize(0)  # the default 300 x 400 one-minute grid
    assert 20 <= len(truth) <= 35
    assert set(truth["shape"]) <= set(SHAPES)
    assert truth.height_m.between(300, 4000).all()
    ratio = truth.height_m / 1000 / truth.radius_km
    assert ratio.between(0.08 - 1e-9, 0.4 + 1e-9).all()
    assert truth.ellipticity.between(0, 0.5).all()
    # The whole footprint (semi-major axis) lies inside the grid.
    reach = truth.radius_km / np.sqrt(1 - truth.ellipticity)
    kx = KM_PER_DEGREE * np.cos(np.radians(truth.lat))
    assert ((truth.lon - float(grid.x[0])) * kx >= reach - 1e-6).all()
    assert ((float(grid.x[-1]) - truth.lon) * kx >= reach - 1e-6).all()
    assert ((truth.lat - float(grid.y[0])) * KM_PER_DEGREE >= reach - 1e-6).all()
    assert ((float(grid.y[-1]) - truth.lat) * KM_PER_DEGREE >= reach - 1e-6).all()
    # Centres at least 0.7 x the sum of radii apart, except within a chain.
    for i, row in truth.iterrows():
        dx, dy = local_km(truth, row.lon, row.lat)
        apart = np.hypot(dx, dy) >= 0.7 * (row.radius_km + truth.radius_km) - 1e-6
        mate = (truth.chain == row.chain) & (row.chain >= 0)
        assert (apart | mate | (truth.index == i)).all()


def test_small_seamounts_dominate_and_chains_overlap():
    truth = pd.concat([synthesize(seed)[1] for seed in range(3)])
    assert truth.height_m.median() < 1200
    assert (truth.chain >= 0).sum() >= 2
    for seed in range(3):
        t = synthesize(seed)[1]
        for _, members in t[t.chain >= 0].groupby("chain"):
            if len(members) < 2:
                continue
            dx, dy = local_km(members.iloc[[0]], members.lon.to_numpy(), members.lat.to_numpy())
            # Some member overlaps the first one: closer than the sum of their radii.
            close = np.hypot(dx, dy)[1:] < (members.radius_km.iloc[0] + members.radius_km.iloc[1:]).to_numpy()
            assert close.any()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_zero_seamounts_in_any_scenario(scenario):
    _, truth = synthesize(1, scenario, n_seamounts=0, shape=SMALL)
    assert truth.empty and list(truth.columns) == list(TRUTH_COLUMNS)


@pytest.mark.parametrize("scenario", ["plain", "fabric", "gaps", "trench", "empty"])
def test_nothing_breaches_sea_level_without_land(scenario):
    for seed in range(3):
        grid, truth = synthesize(seed, scenario, shape=SMALL)
        assert float(grid.max()) <= SUMMIT_CEILING_M + 0.01
        if scenario != "gaps":
            assert not grid.isnull().any()


def test_planted_seamounts_are_where_the_truth_says_and_nowhere_else():
    grid, truth = synthesize(5, "plain")
    bare, _ = synthesize(5, "plain", n_seamounts=0)
    relief = (grid - bare).values.astype(float)
    lon, lat = np.meshgrid(grid.x.values, grid.y.values)
    dx_cell, dy_cell = cell_km(grid)
    footprint = np.zeros(relief.shape, dtype=bool)
    for m in truth.itertuples():
        kx = KM_PER_DEGREE * math.cos(math.radians(m.lat))
        dist = np.hypot((lon - m.lon) * kx, (lat - m.lat) * KM_PER_DEGREE)
        mine = dist <= m.radius_km / math.sqrt(1 - m.ellipticity)
        footprint |= mine
        if m.chain >= 0 or m.radius_km < 4 * dy_cell:
            continue  # overlapping or barely resolved: the shape tests below cover those
        nearest = np.unravel_index(np.argmin(dist), dist.shape)
        assert relief[nearest] >= 0.75 * m.height_m
        if m.shape not in ("guyot", "crater"):  # flat tops and rims have no single highest cell
            top = np.unravel_index(np.argmax(np.where(mine, relief, -np.inf)), dist.shape)
            assert dist[top] <= 1.5 * dy_cell
    assert np.all(np.abs(relief[~footprint]) < 0.01)


def test_seamount_positions_do_not_depend_on_the_confounders():
    plain = synthesize(2, "plain", shape=SMALL)[1]
    fabric = synthesize(2, "fabric", shape=SMALL)[1]
    assert set(zip(fabric.lon, fabric.lat)) <= set(zip(plain.lon, plain.lat))


# --------------------------------------------------------------------------- seamount shapes

AXIS = np.arange(-15.0, 15.01, 0.25)  # km, 0.25 km cells
XX, YY = np.meshgrid(AXIS, AXIS)
CENTRE = (len(AXIS) // 2, len(AXIS) // 2)
RR = np.hypot(XX, YY)


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_is_a_bump_centred_on_its_summit(shape):
    flattening = 0.3 if shape in ("guyot", "crater") else 0.0
    z = render_seamount(XX, YY, 1500.0, 10.0, shape, flattening=flattening)
    assert z.max() == pytest.approx(1500.0)
    assert np.all(z[RR >= 10.0] == 0) and np.all(z[RR < 9.5] > 0)
    iy, ix = np.nonzero(z >= z.max() - 1e-6)
    # The summit (or the flat top, or the crater rim) is centred on (0, 0).
    assert abs(iy.mean() - CENTRE[0]) <= 1 and abs(ix.mean() - CENTRE[1]) <= 1
    if shape not in ("guyot", "crater"):
        assert np.unravel_index(np.argmax(z), z.shape) == CENTRE
        # Monotonic decrease away from the summit along a radius.
        assert np.all(np.diff(z[CENTRE[0], CENTRE[1]:]) <= 1e-9)


def test_cone_is_linear_in_radius():
    profile = render_seamount(AXIS, 0.0, 1000.0, 10.0, "cone")
    inside = np.abs(AXIS) < 10.0
    np.testing.assert_allclose(profile[inside], 1000.0 * (1 - np.abs(AXIS[inside]) / 10.0), atol=1e-9)


def test_guyot_has_a_flat_top():
    z = render_seamount(XX, YY, 2000.0, 10.0, "guyot", flattening=0.4)
    np.testing.assert_allclose(z[RR <= 4.0], 2000.0)
    assert np.all(z[(RR > 4.5) & (RR < 10)] < 2000.0)


def test_crater_has_a_pit_at_the_centre():
    z = render_seamount(XX, YY, 2000.0, 10.0, "crater", flattening=0.25)
    assert z[CENTRE] == pytest.approx(2000.0 * (1 - CRATER_DEPTH))
    assert z[CENTRE] == ndi.minimum_filter(z, size=5)[CENTRE]  # a local minimum
    rim = np.abs(RR - 2.5) < 0.2
    assert np.allclose(z[rim], 2000.0, rtol=0.03)  # the rim is a sharp crest; the ring is 0.4 km wide


def test_elliptical_seamount_is_longer_along_its_azimuth():
    z = render_seamount(XX, YY, 1000.0, 6.0, "gaussian", azimuth_deg=45.0, ellipticity=0.5)
    diagonal = np.diag(z) > 0  # runs south-west to north-east: azimuth 45
    anti = np.diag(np.fliplr(z)) > 0
    assert diagonal.sum() >= 1.8 * anti.sum()
    assert np.unravel_index(np.argmax(z), z.shape) == CENTRE


def test_render_rejects_bad_shapes():
    with pytest.raises(ValueError):
        render_seamount(XX, YY, 1000.0, 5.0, "disc")
    with pytest.raises(ValueError):
        render_seamount(XX, YY, 1000.0, 5.0, "guyot")  # a guyot needs a flat top


# --------------------------------------------------------------------------- confounders


def test_fabric_is_anisotropic_and_realistically_rough():
    for seed in range(3):
        hills = only(seed, "fabric", shape=SMALL, ridge_azimuth_deg=0.0)  # strike north: along = y
        dx, dy = cell_km_of_small()
        along_km = correlation_length(hills, axis=0) * dy
        across_km = correlation_length(hills, axis=1) * dx
        assert along_km > 2.0 * across_km
        yy, xx = np.mgrid[:hills.shape[0], :hills.shape[1]]
        design = np.column_stack([np.ones(hills.size), xx.ravel(), yy.ravel()])
        residual = hills.ravel() - design @ np.linalg.lstsq(design, hills.ravel(), rcond=None)[0]
        assert 50 <= residual.std() <= 250


def test_ridge_has_a_rift_valley_between_higher_flanks():
    dx, _ = cell_km_of_small()
    for seed in range(3):
        profile = only(seed, "ridge", shape=SMALL, ridge_azimuth_deg=0.0).mean(axis=0)  # axis runs north
        axis = int(np.argmin(profile))
        near, far = int(5 / dx), int(25 / dx)
        west, east = profile[max(axis - far, 0):max(axis - near, 1)], profile[axis + near:axis + far]
        assert west.size and east.size, "rift valley too close to the edge"
        assert west.max() > profile[axis] + 500 and east.max() > profile[axis] + 500


def test_fracture_zone_is_a_kilometre_scale_step():
    for seed in range(3):
        profile = only(seed, "fracture_zone", shape=SMALL, ridge_azimuth_deg=0.0).mean(axis=1)  # runs east-west
        step = abs(profile[-20:].mean() - profile[:20].mean())
        assert 900 <= step <= 2100
        assert np.abs(np.diff(profile)).max() > 200  # sharp: over a few km, not a regional slope


def test_fracture_zone_offsets_the_ridge_axis():
    kw = {"n_seamounts": 0, "shape": SMALL, "ridge_azimuth_deg": 0.0}  # ridge runs north, fracture zone east
    offset = (synthesize(1, confounders=("ridge", "fracture_zone"), **kw)[0]
              - synthesize(1, confounders=("fracture_zone",), **kw)[0]).values
    assert abs(int(np.argmin(offset[5])) - int(np.argmin(offset[-5]))) >= 10  # >= ~15 km transform offset
    straight = only(1, "ridge", **{k: v for k, v in kw.items() if k != "n_seamounts"})
    assert np.argmin(straight[5]) == np.argmin(straight[-5])


def test_volcanic_ridges_are_elongated():
    for seed in range(3):
        relief = only(seed, "volcanic_ridge", shape=SMALL)
        assert 300 <= relief.max() <= 1500 + 1
        labels, n = ndi.label(relief > 100)
        assert n >= 1
        dx, dy = cell_km_of_small()
        for i in range(1, n + 1):
            iy, ix = np.nonzero(labels == i)
            if iy.size < 10:
                continue  # a sliver at the grid edge
            eig = np.linalg.eigvalsh(np.cov(np.vstack([ix * dx, iy * dy])))
            assert math.sqrt(eig[1] / eig[0]) >= 3


def test_trench_is_a_deep_asymmetric_trough():
    for seed in range(3):
        profile = only(seed, "trench", shape=SMALL, ridge_azimuth_deg=0.0).mean(axis=0)  # strikes north
        axis = int(np.argmin(profile))
        assert profile[axis] <= -1900
        left, right = profile[:axis], profile[axis + 1:]
        assert left.size and right.size
        # One side climbs to a forearc above the regional level, the other has a low outer rise.
        high, low = (left, right) if left.max() > right.max() else (right, left)
        assert high.max() > 400 and 0 < low.max() < 400


def test_gaps_cover_5_to_15_percent_and_cut_into_some_seamounts():
    partial = 0
    for seed in range(4):
        grid, truth = synthesize(seed, "gaps")
        assert 0.05 <= float(grid.isnull().mean()) <= 0.15
        lon, lat = np.meshgrid(grid.x.values, grid.y.values)
        missing = grid.isnull().values
        for m in truth.itertuples():
            kx = KM_PER_DEGREE * math.cos(math.radians(m.lat))
            dist = np.hypot((lon - m.lon) * kx, (lat - m.lat) * KM_PER_DEGREE)
            inside = dist < m.radius_km
            if missing[inside].any() and not missing[inside].all():
                partial += 1
        assert not synthesize(seed, "gaps", confounders=("fabric",))[0].isnull().any()
    assert partial >= 4


def test_island_breaches_sea_level_inside_a_shelf():
    for seed in range(3):
        grid, truth = synthesize(seed, "island", shape=SMALL)
        land = grid.isnull().values
        labels, n = ndi.label(land)
        assert n >= 1 and land.sum() >= 20
        # Land is fringed by a shallow shelf: the sea cells bordering it are shallow.
        fringe = ndi.binary_dilation(land) & ~land
        assert np.all(grid.values[fringe] > -400) and np.all(grid.values[fringe] < 0)
        # Without the island the same seafloor is all submarine.
        assert not synthesize(seed, confounders=(), shape=SMALL)[0].isnull().any()
        assert np.all(truth.height_m >= 300)


def test_land_confounder_composes_with_others():
    grid, _ = synthesize(0, confounders=tuple(CONFOUNDERS), shape=SMALL)
    assert grid.isnull().any()
    assert float(grid.max()) < 0


def test_empty_has_no_seamounts():
    for seed in range(3):
        empty, truth = synthesize(seed, "empty", shape=SMALL)
        assert truth.empty and list(truth.columns) == list(TRUTH_COLUMNS)
        # The same ridge-flank seafloor as the "fabric" scenario, with nothing planted on it.
        bare, _ = synthesize(seed, "fabric", n_seamounts=0, shape=SMALL)
        np.testing.assert_array_equal(empty.values, bare.values)
        # Only volcanic ridges (elongated, tested above) stand 500 m proud of a 15-22 km ring...
        no_ridges, _ = synthesize(seed, confounders=("fabric", "ridge", "fracture_zone"), n_seamounts=0, shape=SMALL)
        assert len(closed_bumps(no_ridges)) == 0
    # ...whereas the same test does see planted seamounts.
    assert len(closed_bumps(synthesize(0, "fabric", shape=SMALL)[0])) >= 1


def test_ridges_has_no_seamounts_and_taller_denser_volcanic_ridges():
    for seed in range(3):
        ridges, truth = synthesize(seed, "ridges", shape=SMALL)
        assert truth.empty
        plain_ridge = only(seed, "volcanic_ridge", shape=SMALL)
        bare, _ = synthesize(seed, confounders=("fabric", "ridge"), n_seamounts=0, shape=SMALL)
        relief = (ridges - bare).values - np.median((ridges - bare).values)  # the volcanic ridges alone
        assert 900 - 50 <= relief.max() <= 1600 + 50
        assert (relief > 300).sum() > (plain_ridge > 300).sum()  # more ridge than the other scenarios carry
    with pytest.raises(SeamountaeError, match="plants no seamounts"):
        synthesize(0, "ridges", n_seamounts=3)


def test_planting_into_a_real_grid_adds_seamounts_where_the_truth_says_and_nowhere_else():
    from seamountae.synth import plant

    grid, _ = synthesize(4, "fabric", n_seamounts=0, shape=SMALL)
    grid.values[:20, :] = np.nan  # a data gap: nothing is planted over it
    avoid = pd.DataFrame({"lon": [float(grid.x[100])], "lat": [float(grid.y[75])]})
    region = (float(grid.x[20]), float(grid.x[180]), float(grid.y[0]), float(grid.y[-1]))
    planted, truth = plant(grid, seed=3, region=region, avoid=avoid, avoid_km=25.0, max_height_m=3000.0)
    assert len(truth) >= 3 and truth["height_m"].between(300, 3000).all() and set(truth["shape"]) <= set(SHAPES)
    assert truth["lon"].between(region[0], region[1]).all()
    added = (planted - grid).values
    assert np.all(added[np.isfinite(added)] >= -1e-3) and np.isnan(planted.values[:20]).all()
    assert np.allclose(added[:, :20][np.isfinite(added[:, :20])], 0.0)  # outside the region: untouched
    kx = KM_PER_DEGREE * math.cos(math.radians(float(avoid["lat"][0])))
    d = np.hypot((truth["lon"] - avoid["lon"][0]) * kx, (truth["lat"] - avoid["lat"][0]) * KM_PER_DEGREE)
    assert (d >= 0.7 * (truth["radius_km"] + 25.0)).all()
    for m in truth[truth["radius_km"] >= 3].itertuples():  # each resolved summit raised the grid by about its height
        r, c = np.argmin(abs(grid.y.values - m.lat)), np.argmin(abs(grid.x.values - m.lon))
        assert added[r - 2 : r + 3, c - 2 : c + 3].max() >= 0.7 * m.height_m
    assert grid.values[20:].min() < planted.values[20:].max()


def test_confounders_are_planted_at_the_given_heights_apart_from_what_they_avoid():
    from seamountae.synth import CONFOUNDER_COLUMNS, CONFOUNDER_KINDS, plant_confounders

    grid, _ = synthesize(4, "plain", n_seamounts=0, shape=(300, 400))
    avoid = pd.DataFrame({"lon": [float(grid.x[200])], "lat": [float(grid.y[150])], "radius_km": [10.0]})
    region = (float(grid.x[40]), float(grid.x[-1]), float(grid.y[0]), float(grid.y[-1]))
    heights = np.array([400.0, 600.0, 800.0, 1000.0, 1200.0, 1500.0])
    out, table = plant_confounders(grid, heights, seed=2, region=region, avoid=avoid, avoid_km=25.0)
    assert list(table.columns) == list(CONFOUNDER_COLUMNS) and len(table) >= 5
    assert set(table["kind"]) == set(CONFOUNDER_KINDS)
    # Each takes one of the heights (none is capped on this deep plain), the tallest first.
    assert np.isin(table["height_m"].round(6), heights).all()
    added = (out - grid).values
    assert np.all(added >= -1e-3) and np.allclose(added[:, :40], 0.0)  # outside the region: untouched
    kx = KM_PER_DEGREE * math.cos(math.radians(float(grid.y.mean())))
    yy, xx = np.meshgrid(grid.y.values, grid.x.values, indexing="ij")
    near_any = np.zeros(grid.shape, bool)
    for c in table.itertuples():
        d = np.hypot((xx - c.lon) * kx, (yy - c.lat) * KM_PER_DEGREE)
        near_any |= d <= c.reach_km + 2.0
        assert 0.85 * c.height_m <= added[d <= c.reach_km + 2.0].max() <= c.height_m + 1e-2  # its relief reaches its height (grid nodes may miss a narrow crest)
        assert np.hypot((c.lon - avoid["lon"][0]) * kx, (c.lat - avoid["lat"][0]) * KM_PER_DEGREE) >= c.reach_km + 35.0
    assert np.allclose(added[~near_any], 0.0)  # nothing outside their reach
    again, same = plant_confounders(grid, heights, seed=2, region=region, avoid=avoid, avoid_km=25.0)
    assert same.equals(table) and np.array_equal(again.values, out.values, equal_nan=True)
    with pytest.raises(SeamountaeError, match="geographic"):
        plant_confounders(grid.assign_attrs(geographic=0), heights)
