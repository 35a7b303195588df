"""Patches: physical size whatever the grid spacing, bilinear resampling, normalisation, relief, tiling."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch

from seamountae.errors import SeamountaeError
from seamountae.geometry import KM_PER_DEGREE, GridGeometry
from seamountae.grid import canonical_grid
from seamountae.patches import (MAX_NAN_FRACTION, MIN_STD_M, bilinear, lowpass, lowpass_sigma, normalise, normalise_batch,
                                relief_batch, resolution_problem, sample_patches, tile)
from seamountae.synth import render_seamount


def projected_grid(values_of_km, n=101, spacing_m=1000.0):
    """An n x n projected grid (metres) whose values are f(x_km, y_km), origin at the centre cell."""
    c = (np.arange(n) - n // 2) * spacing_m
    xx, yy = np.meshgrid(c / 1000, c / 1000)
    return canonical_grid(values_of_km(xx, yy), c, c, geographic=False, crs="", mask_land=False)


def geographic_grid(values_of_km, lat0, n=121, spacing_deg=1 / 60):
    lon = -30 + (np.arange(n) - n // 2) * spacing_deg
    lat = lat0 + (np.arange(n) - n // 2) * spacing_deg
    lon2, lat2 = np.meshgrid(lon, lat)
    x_km = (lon2 + 30) * KM_PER_DEGREE * np.cos(np.radians(lat2))
    y_km = (lat2 - lat0) * KM_PER_DEGREE
    return canonical_grid(values_of_km(x_km, y_km), lon, lat, geographic=True, mask_land=False)


def cone(height=1000.0, radius=8.0, base=-4000.0, shape="cone"):
    return lambda x, y: base + render_seamount(x, y, height, radius, shape)


# ------------------------------------------------------------------------------------- sampling


def test_patch_spans_patch_km_on_a_projected_grid():
    grid = projected_grid(lambda x, y: 10.0 * x + 1.0 * y)  # 10 m per km eastwards, 1 m per km northwards
    patch = sample_patches(grid, 0.0, 0.0, patch_km=24.0, patch_px=16)[0]
    span_px = 24.0 * 15 / 16  # from the first to the last pixel centre
    assert patch[0, -1] - patch[0, 0] == pytest.approx(10.0 * span_px, rel=1e-4)
    assert patch[-1, 0] - patch[0, 0] == pytest.approx(1.0 * span_px, rel=1e-4)  # row 0 is the south edge


@pytest.mark.parametrize("lat0", [0.0, 45.0, 60.0])
def test_patch_is_patch_km_wide_at_any_latitude(lat0):
    """East-west the patch covers the same km as north-south: the local cos(latitude) scale is used."""
    grid = geographic_grid(lambda x, y: x + y, lat0)
    patch = sample_patches(grid, -30.0, lat0, patch_km=24.0, patch_px=16)[0]
    east_west = patch[8, -1] - patch[8, 0]
    north_south = patch[-1, 8] - patch[0, 8]
    assert east_west == pytest.approx(24.0 * 15 / 16, rel=0.01)
    assert north_south == pytest.approx(24.0 * 15 / 16, rel=0.01)


def test_patch_is_centred_on_the_seamount_and_scaled():
    grid = projected_grid(cone())
    centred = sample_patches(grid, 0.0, 0.0, 24.0, 16)[0]
    assert np.unravel_index(np.argmax(centred), centred.shape) in {(7, 7), (7, 8), (8, 7), (8, 8)}
    wide = sample_patches(grid, 0.0, 0.0, 24.0, 16, scale=2.0)[0]
    # Twice the km in the same pixels: the cone looks half as wide, so more of the patch is flat seafloor.
    assert (wide <= -3999).sum() > (centred <= -3999).sum()


def test_sampling_outside_the_grid_gives_nan():
    grid = projected_grid(cone(), n=41)
    patch = sample_patches(grid, 19_000.0, 0.0, 24.0, 16)[0]  # centred 1 km inside the east edge
    assert np.isnan(patch[:, -1]).all() and np.isfinite(patch[:, 0]).all()


def test_bilinear_is_exact_at_nodes_and_midpoints():
    values = np.arange(12, dtype=np.float32).reshape(3, 4)
    rows = np.array([[0.0, 1.0, 0.5]])
    cols = np.array([[0.0, 2.0, 1.5]])
    np.testing.assert_allclose(bilinear(values, rows, cols), [[0.0, 6.0, 0.5 * (1.5 + 5.5)]])


def test_bilinear_missing_next_to_nan_and_outside():
    values = np.ones((4, 4), np.float32)
    values[1, 1] = np.nan
    out = bilinear(values, np.array([1.5, 2.5, 0.0, -1.0]), np.array([1.5, 2.5, 3.0, 0.0]))
    assert np.isnan(out[0]) and out[1] == 1.0 and out[2] == 1.0 and np.isnan(out[3])


# --------------------------------------------------------------------------------- normalisation


def test_normalise_removes_the_plane_and_scales_to_unit_variance():
    rng = np.random.default_rng(0)
    bump = rng.normal(size=(16, 16)).astype(np.float32)
    u = np.linspace(-1, 1, 16)
    plane = 500.0 * u[None, :] - 300.0 * u[:, None] - 4500.0
    a, _, _ = normalise(bump[None] * 100.0 + plane[None])
    b, _, _ = normalise(bump[None] * 7.0)
    np.testing.assert_allclose(a, b, atol=2e-4)  # offset, slope and amplitude do not matter
    assert abs(a.mean()) < 1e-4 and a.std() == pytest.approx(1.0, rel=1e-3)


def test_normalise_keeps_millimetres_at_abyssal_depth():
    small = np.zeros((1, 16, 16), np.float32)
    small[0, 8, 8] = 5.0
    deep, _, std_deep = normalise(small - 5500.0)
    shallow, _, std = normalise(small)
    np.testing.assert_allclose(deep, shallow, atol=1e-3)
    assert std_deep[0] == pytest.approx(std[0], rel=1e-3)


def test_normalise_flat_patch_is_not_amplified():
    flat = np.full((1, 16, 16), -4000.0, np.float32)
    flat[0, 3, 3] += 0.01  # a centimetre of noise
    out, _, std = normalise(flat)
    assert std[0] < MIN_STD_M and np.abs(out).max() < 0.01


def test_normalise_marks_missing_cells_and_zeroes_them():
    patch = np.random.default_rng(1).normal(size=(1, 16, 16)).astype(np.float32) * 100
    patch[0, :4, :] = np.nan
    out, valid, _ = normalise(patch)
    assert not valid[0, :4].any() and valid[0, 4:].all()
    assert (out[0, :4] == 0).all() and np.isfinite(out).all()


def test_normalise_batch_matches_numpy_front_end():
    patch = np.random.default_rng(2).normal(size=(3, 8, 8)).astype(np.float32)
    out_t, valid_t, std_t = normalise_batch(torch.from_numpy(patch))
    out_n, valid_n, std_n = normalise(patch)
    np.testing.assert_array_equal(out_t.numpy(), out_n)
    np.testing.assert_array_equal(std_t.numpy(), std_n)


def test_relief_of_a_seamount_on_flat_seafloor_is_its_height():
    grid = projected_grid(cone(height=1200.0, radius=10.0, shape="gaussian"))  # a round top: no apex between pixels
    patch = sample_patches(grid, 0.0, 0.0, 32.0, 32)
    assert float(relief_batch(torch.from_numpy(patch))[0]) == pytest.approx(1200.0, rel=0.05)
    flat = sample_patches(projected_grid(lambda x, y: -4000.0 + 0 * x), 0.0, 0.0, 32.0, 32)
    assert float(relief_batch(torch.from_numpy(flat))[0]) == pytest.approx(0.0, abs=1e-3)


# ------------------------------------------------------------------------------------------- tile


def catalogue(*points):
    return pd.DataFrame({"lon": [p[0] for p in points], "lat": [p[1] for p in points]})


def test_tile_counts_augmentations_and_groups_seamounts():
    grid = projected_grid(cone())
    ds = tile(grid, catalogue((0.0, 0.0), (-5000.0, 3000.0)), patch_km=24.0, patch_px=16, shifts_px=1, scales=(0.9, 1.1),
              radius_ratio=0)
    assert ds.sizes["sample"] == 2 * 9 * 2
    assert ds["patch"].shape[1:] == (16, 16)
    assert np.bincount(ds["seamount"].values).tolist() == [18, 18]
    assert ds.attrs["seamountae_kind"] == "patches" and ds.attrs["patch_px"] == 16 and ds.attrs["patch_km"] == 24.0
    assert ds.attrs["n_seamounts"] == 2
    assert set(np.round(ds["scale"].values, 6)) == {0.9, 1.1}


def test_tile_sizes_each_patch_to_its_seamount():
    """Patches are radius_ratio basal radii wide: a seamount twice as wide gets a patch twice as wide."""
    small, large = cone(height=1500.0, radius=4.0), cone(height=1500.0, radius=8.0)
    sizes = [float(tile(projected_grid(c), catalogue((0.0, 0.0)), patch_km=48.0, patch_px=16, shifts_px=0, scales=(1.0,),
                        window_km=(6.0, 96.0), radius_ratio=4.0)["scale"][0]) for c in (small, large)]
    assert sizes[1] / sizes[0] == pytest.approx(2.0, rel=0.15)
    assert 48.0 * sizes[0] == pytest.approx(4 * 4.0, rel=0.15)  # a cone's basal radius: twice its half-height radius


def test_tile_labels_the_grids_candidates():
    """Training seamounts' summits are positives, summits far from any catalogued seamount background."""
    seamounts = [(0.0, 0.0), (-30.0, 25.0)]
    ridge = lambda x, y: render_seamount(x - 25.0, y + 25.0, 900.0, 12.0, "gaussian", azimuth_deg=45, ellipticity=0.8)

    def terrain(x, y):
        z = -4000.0 + ridge(x, y)
        for sx, sy in seamounts:
            z = z + render_seamount(x - sx, y - sy, 1200.0, 6.0, "cone")
        return z

    grid = projected_grid(terrain, n=141)
    ds = tile(grid, catalogue(*[(1000 * a, 1000 * b) for a, b in seamounts]), patch_km=24.0, patch_px=16,
              window_km=(12.0, 48.0))
    label, seamount = ds["candidate_label"].values, ds["candidate_seamount"].values
    assert sorted(seamount[label == 1].tolist()) == [0, 1]
    x, y = ds["candidate_x"].values / 1000, ds["candidate_y"].values / 1000
    background = np.flatnonzero(label == 0)
    assert background.size >= 1 and np.all(np.hypot(x[background] - 25.0, y[background] + 25.0) < 20.0)  # the ridge
    assert ds["candidate_patch"].shape[1:] == (17, 16, 16)  # its own patch, then its surroundings'
    assert ds.attrs["n_unseen"] == 0


def test_tile_shifts_are_in_patch_pixels():
    grid = projected_grid(cone())
    ds = tile(grid, catalogue((0.0, 0.0)), patch_km=24.0, patch_px=16, shifts_px=2, scales=(1.0,), radius_ratio=0)
    # 1.5 km per patch pixel: centres lie on a 5 x 5 lattice 1.5 km apart around the seamount.
    assert sorted(set(np.round(ds["x"].values))) == [-3000.0, -1500.0, 0.0, 1500.0, 3000.0]
    assert sorted(set(np.round(ds["y"].values))) == [-3000.0, -1500.0, 0.0, 1500.0, 3000.0]


def test_tile_drops_patches_mostly_off_the_grid():
    grid = projected_grid(cone(), n=61)  # 60 km wide
    ds = tile(grid, catalogue((0.0, 0.0), (30_000.0, 0.0)), patch_km=24.0, patch_px=16, shifts_px=0, scales=(1.0,))
    assert ds["seamount"].values.tolist() == [0]  # the seamount on the edge would be half missing
    assert ds.attrs["n_seamounts"] == 1
    assert (np.isnan(ds["patch"].values).mean(axis=(1, 2)) <= MAX_NAN_FRACTION).all()


def test_tile_with_every_patch_missing_is_an_error():
    grid = projected_grid(cone(), n=61)
    grid.values[:30, :] = np.nan  # the seamount stands, but its patches are mostly off the seafloor
    with pytest.raises(SeamountaeError, match="missing.*--patch-km"):
        tile(grid, catalogue((0.0, 0.0)), patch_km=24.0, patch_px=16, window_km=(24.0, 24.0))


def test_tile_without_a_standing_seamount_is_an_error():
    grid = projected_grid(cone(), n=61)
    with pytest.raises(SeamountaeError, match="none of the 1 catalogued seamounts stands 300 m.*--min-height-m"):
        tile(grid, catalogue((25_000.0, 25_000.0)), patch_km=24.0, patch_px=16)


def test_tile_on_the_synthetic_grid_centres_patches_on_summits(synthetic):
    grid, truth = synthetic
    big = truth.sort_values("height_m", ascending=False).head(3)
    ds = tile(grid, big, patch_km=24.0, patch_px=16, shifts_px=0, scales=(1.0,))
    for patch in ds["patch"].values:
        centre = np.nanmax(patch[6:10, 6:10])
        assert centre >= np.nanpercentile(patch, 90)  # the summit is in the middle of the patch


@pytest.mark.parametrize("patch_px", [4, 7])
def test_tile_rejects_tiny_or_odd_patch_sizes(patch_px):
    with pytest.raises(SeamountaeError, match="patch_px"):
        tile(projected_grid(cone()), catalogue((0.0, 0.0)), patch_km=24.0, patch_px=patch_px)


def test_tile_rejects_patch_px_the_autoencoder_cannot_take():
    with pytest.raises(SeamountaeError, match="patch_px"):
        tile(projected_grid(cone()), catalogue((0.0, 0.0)), patch_km=24.0, patch_px=12)


@pytest.mark.parametrize("patch_km", [0.0, -24.0])
def test_tile_rejects_non_positive_patch_km(patch_km):
    with pytest.raises(SeamountaeError, match="patch_km"):
        tile(projected_grid(cone()), catalogue((0.0, 0.0)), patch_km=patch_km, patch_px=16)


# -------------------------------------------------------------------------------- resolution


def test_a_fine_grid_is_low_passed_to_the_patch_pixels():
    """A 0.25 km grid with 0.5 km ripples, sampled to 1.5 km pixels, looks like the same area at 1 km
    (where the ripples average out): no aliasing of the roughness into the patch."""
    ripples = lambda x, y: cone(height=1000.0, radius=10.0)(x, y) + 150.0 * np.sin(2 * np.pi * x / 0.5)
    fine = projected_grid(ripples, n=401, spacing_m=250.0)
    smooth = projected_grid(cone(height=1000.0, radius=10.0), n=101, spacing_m=1000.0)
    got = sample_patches(fine, 0.0, 0.0, 48.0, 32)[0]
    expected = sample_patches(smooth, 0.0, 0.0, 48.0, 32)[0]
    assert np.abs(got - expected).max() < 40.0  # bilinear point sampling alone would show ±150 m ripples
    assert lowpass_sigma(1.5, 0.25) == pytest.approx(2.5) and lowpass_sigma(1.5, 2.0) == 0.0


def test_lowpass_keeps_missing_cells_missing_and_ignores_them_nearby():
    z = np.full((40, 40), -4000.0, np.float32)
    z[20, 20] = np.nan
    out = lowpass(z, 2.0, 2.0)
    assert np.isnan(out[20, 20]) and np.allclose(out[np.isfinite(out)], -4000.0)


def test_a_coarse_grid_is_said_to_be_too_coarse(caplog):
    from conftest import model_meta

    meta = model_meta(48.0, 16)  # smallest own patch 24 km
    five_minutes = projected_grid(lambda x, y: -4000.0 + 0 * x, n=41, spacing_m=9000.0)
    problem = resolution_problem(five_minutes, meta)
    assert problem and "24 km" in problem and "2.7 cells" in problem and "finer grid" in problem
    assert resolution_problem(projected_grid(lambda x, y: -4000.0 + 0 * x), meta) is None
    from seamountae import scoring

    with caplog.at_level("WARNING", logger="seamountae"):
        scoring.warn_if_coarse(five_minutes, meta)
    assert [r.getMessage() for r in caplog.records] == [problem]


def test_a_patch_on_the_antimeridian_of_a_global_grid_sees_across_it():
    """Cut at ±180° from a global grid, a patch is the one cut at 0° from the grid rolled by 180°."""
    step = 0.25
    x = -180 + step / 2 + step * np.arange(1440)
    y = -5 + step / 2 + step * np.arange(40)
    z = -4000.0 + 300.0 * np.sin(np.radians(3 * x))[None, :] * np.cos(np.radians(20 * y))[:, None]
    grid = canonical_grid(z.astype(np.float32), x, y, True, None, "global")
    rolled = canonical_grid(np.roll(z, 720, axis=1).astype(np.float32), x, y, True, None, "rolled")
    at_seam = sample_patches(grid, np.array([x[0]]), np.array([y[20]]), 300.0, 16)
    at_zero = sample_patches(rolled, np.array([x[720]]), np.array([y[20]]), 300.0, 16)
    assert np.isfinite(at_seam).all()
    np.testing.assert_allclose(at_seam, at_zero, rtol=0, atol=1e-3)


@pytest.mark.parametrize("convention", ["the grid's own (178..182)", "-180..180"])
def test_tile_across_the_antimeridian_uses_every_seamount(convention, tmp_path):
    """A regional grid from 178°E to 182°E: a catalogue in either longitude convention trains on all its seamounts."""
    from seamountae.catalogue import write_csv
    from seamountae.config import defaults
    from seamountae.grid import write_grid
    from seamountae.pipeline import tile_file
    from seamountae.synth import synthesize

    grid, truth = synthesize(seed=5, shape=(150, 240), origin=(178.0, 10.0), n_seamounts=12,
                             confounders=("volcanic_ridge",))
    assert grid.x.values[0] < 180 < grid.x.values[-1]
    if convention == "-180..180":
        truth = truth.assign(lon=(truth["lon"] + 180) % 360 - 180)
    write_grid(grid, tmp_path / "grid.nc")
    write_csv(truth, tmp_path / "truth.csv")
    patches = tile_file(tmp_path / "grid.nc", tmp_path / "truth.csv", tmp_path / "p.nc",
                        {**defaults("tile"), "patch_km": 24.0, "patch_px": 16, "window_km": [12.0, 48.0]},
                        defaults("grid"))
    standing = tile(grid, truth.assign(lon=(truth["lon"] - 178) % 360 + 178), patch_km=24.0, patch_px=16,
                    window_km=(12.0, 48.0)).attrs["n_seamounts"]
    assert patches.attrs["n_seamounts"] == standing >= 8


def test_tile_reprojects_a_lon_lat_catalogue_for_a_projected_grid(tmp_path):
    from rasterio.crs import CRS
    from rasterio.warp import transform

    from seamountae.catalogue import write_csv
    from seamountae.config import defaults
    from seamountae.grid import write_grid
    from seamountae.pipeline import tile_file

    utm = CRS.from_epsg(32626)
    x0, y0 = transform(CRS.from_epsg(4326), utm, [-27.0], [38.0])
    centres = [(0.0, 0.0), (30_000.0, -20_000.0)]

    def terrain(x, y):
        z = -4000.0 + 0 * x
        for cx, cy in centres:
            z = z + render_seamount(x - cx / 1000, y - cy / 1000, 1200.0, 6.0, "cone")
        return z + render_seamount(x + 40.0, y - 40.0, 900.0, 15.0, "gaussian", azimuth_deg=30, ellipticity=0.85)

    c = (np.arange(141) - 70) * 1000.0
    xx, yy = np.meshgrid(c / 1000, c / 1000)
    grid = canonical_grid(terrain(xx, yy), x0[0] + c, y0[0] + c, geographic=False, crs=utm.to_wkt(), mask_land=False)
    write_grid(grid, tmp_path / "utm.tif")
    lon, lat = transform(utm, CRS.from_epsg(4326), [x0[0] + a for a, _ in centres], [y0[0] + b for _, b in centres])
    write_csv(pd.DataFrame({"lon": lon, "lat": lat}), tmp_path / "lonlat.csv")
    params = {**defaults("tile"), "patch_km": 24.0, "patch_px": 16, "window_km": [12.0, 48.0]}
    patches = tile_file(tmp_path / "utm.tif", tmp_path / "lonlat.csv", tmp_path / "p.nc", params, defaults("grid"))
    assert patches.attrs["n_seamounts"] == 2


def test_a_crs_in_feet_gives_patches_patch_km_wide_on_the_ground():
    from rasterio.crs import CRS


    feet = CRS.from_epsg(2227)  # California zone 3, US survey feet
    foot = feet.linear_units_factor[1]
    c = (np.arange(161) - 80) * 1000.0  # 1000 ft cells
    xx, _ = np.meshgrid(c * foot / 1000, c * foot / 1000)  # km east of the centre
    grid = canonical_grid(-4000.0 + 10.0 * xx, 6_000_000 + c, 2_000_000 + c, geographic=False, crs=feet.to_wkt(),
                          mask_land=False)
    assert GridGeometry.of(grid).cell_size_km() == pytest.approx((0.3048006, 0.3048006), rel=1e-6)
    patch = sample_patches(grid, 6_000_000.0, 2_000_000.0, patch_km=24.0, patch_px=16)[0]
    assert patch[8, -1] - patch[8, 0] == pytest.approx(10.0 * 24.0 * 15 / 16, rel=1e-3)  # 10 m per km, 22.5 km apart


@pytest.mark.parametrize("geographic", [False, True])
def test_patches_sharing_one_window_equal_patches_cut_alone(geographic):
    """A candidate's 17 patches are cut from one window, read and low-passed once (share=17)."""
    rng = np.random.default_rng(3)
    rough = lambda x, y: -4000.0 + 300 * np.sin(x / 3.0) * np.cos(y / 5.0) + 40 * rng.normal(size=x.shape)
    grid = geographic_grid(rough, 50.0, n=241, spacing_deg=1 / 240) if geographic else \
        projected_grid(rough, n=241, spacing_m=250.0)
    grid.values[100:110, 60:75] = np.nan  # a gap some patches touch
    x = np.linspace(float(grid.x[40]), float(grid.x[200]), 34)
    y = np.linspace(float(grid.y[200]), float(grid.y[40]), 34)
    scale = np.repeat([0.6, 1.3], 17)  # two runs of 17, patch pixels 4-10 cells: low-passed
    alone = sample_patches(grid, x, y, 24.0, 16, scale)
    shared = sample_patches(grid, x, y, 24.0, 16, scale, share=17)
    assert np.isnan(alone).any() and np.isfinite(alone).mean() > 0.5
    first = [0, 17]
    np.testing.assert_array_equal(shared[first], alone[first])  # each run's first patch: exactly as alone
    if geographic:  # the others at the first one's low-pass width: cos(latitude) apart
        assert np.array_equal(np.isnan(shared), np.isnan(alone))
        assert np.nanmax(np.abs(shared - alone)) < 5.0
    else:  # one width everywhere: exactly as alone
        np.testing.assert_array_equal(shared, alone)
