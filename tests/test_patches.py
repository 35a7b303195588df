"""Patches: physical size whatever the grid spacing, bilinear resampling, normalisation, relief."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from seamountae.geometry import KM_PER_DEGREE, GridGeometry
from seamountae.grid import canonical_grid
from seamountae.patches import (MIN_STD_M, bilinear, lowpass, lowpass_sigma, lowpassed_window, normalise, normalise_batch,
                                relief_batch, resolution_problem, sample_patches)
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
    """A candidate's 17 patches are read as one window and computed as one batch (share=17); each
    is still the patch it is alone, to float32 rounding, with the same missing pixels."""
    grid, x, y, scale = _rough_grid_with_a_gap(geographic)
    alone = sample_patches(grid, x, y, 24.0, 16, scale)
    shared = sample_patches(grid, x, y, 24.0, 16, scale, share=17)
    assert np.isnan(alone).any() and np.isfinite(alone).mean() > 0.5
    assert np.array_equal(np.isnan(shared), np.isnan(alone))
    np.testing.assert_allclose(shared, alone, rtol=0, atol=2e-3)


@pytest.mark.parametrize("geographic", [False, True])
def test_patches_are_the_whole_window_low_passed_by_ndimage_then_sampled(geographic):
    """The low-pass evaluated only where the samples read equals low-passing the patch's window
    with ndimage (lowpass) and sampling it bilinearly (bilinear), missing pixels included."""
    grid, x, y, scale = _rough_grid_with_a_gap(geographic)
    got = sample_patches(grid, x, y, 24.0, 16, scale)
    geometry = GridGeometry.of(grid)
    per_km_y, per_km_x = geometry.cells_per_km(y)
    row, col = geometry.fractional_index(x, y)
    offsets = (np.arange(16) - 7.5) * 1.5
    for i in range(len(x)):
        rows, cols = row[i] + offsets * scale[i] * per_km_y[i], col[i] + offsets * scale[i] * per_km_x[i]
        r0, c0 = int(np.floor(rows[0])), int(np.floor(cols[0]))
        px_km = 24.0 * scale[i] / 16
        window = lowpassed_window(grid, r0, int(np.floor(rows[-1])) + 2, c0, int(np.floor(cols[-1])) + 2,
                                  float(lowpass_sigma(px_km, 1 / per_km_y[i])), float(lowpass_sigma(px_km, 1 / per_km_x[i])))
        rr, cc = np.meshgrid(rows - r0, cols - c0, indexing="ij")
        expected = bilinear(window, rr, cc)
        assert np.array_equal(np.isnan(got[i]), np.isnan(expected)), i
        np.testing.assert_allclose(got[i], expected, rtol=0, atol=2e-3)


def _rough_grid_with_a_gap(geographic):
    """A rough grid with a gap, and 34 patch centres across it at two scales (pixels 4-10 cells: low-passed)."""
    rng = np.random.default_rng(3)
    rough = lambda x, y: -4000.0 + 300 * np.sin(x / 3.0) * np.cos(y / 5.0) + 40 * rng.normal(size=x.shape)
    grid = geographic_grid(rough, 50.0, n=241, spacing_deg=1 / 240) if geographic else \
        projected_grid(rough, n=241, spacing_m=250.0)
    grid.values[100:110, 60:75] = np.nan  # a gap some patches touch
    x = np.linspace(float(grid.x[40]), float(grid.x[200]), 34)
    y = np.linspace(float(grid.y[200]), float(grid.y[40]), 34)
    return grid, x, y, np.repeat([0.6, 1.3], 17)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_candidate_patches_on_cuda_equal_those_on_the_cpu():
    grid, x, y, scale = _rough_grid_with_a_gap(True)
    cpu = sample_patches(grid, x, y, 24.0, 16, scale, share=17)
    cuda = sample_patches(grid, x, y, 24.0, 16, scale, share=17, device="cuda")
    assert np.array_equal(np.isnan(cpu), np.isnan(cuda))
    np.testing.assert_allclose(cuda, cpu, rtol=0, atol=2e-3)
