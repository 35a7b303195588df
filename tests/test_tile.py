"""The tile stage: training patches sized to each seamount, and the grid's labelled candidates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seamountae.errors import SeamountaeError
from seamountae.grid import canonical_grid
from seamountae.patches import MAX_NAN_FRACTION
from seamountae.synth import render_seamount
from seamountae.tile import tile
from test_patches import cone, projected_grid


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
