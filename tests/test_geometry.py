"""GridGeometry: the one place coordinates become indices and kilometres."""

import math

import numpy as np
import pytest
import xarray as xr
from rasterio.crs import CRS

from seamountae.geometry import KM_PER_DEGREE, GridGeometry, haversine_km
from seamountae.grid import WGS84_WKT, canonical_grid

FEET = CRS.from_epsg(2227).to_wkt()  # California zone 3, US survey feet


def lonlat_grid(x, y):
    return canonical_grid(np.full((len(y), len(x)), -4000.0), x, y, geographic=True)


def test_one_object_per_grid_and_its_scale_by_row():
    grid = lonlat_grid(np.arange(-30, -20, 0.25), np.arange(58, 62, 0.5))
    geometry = GridGeometry.of(grid)
    assert GridGeometry.of(grid.copy()) is geometry  # built once for the same grid
    dy_km, dx_km = geometry.row_km(np.arange(grid.sizes["y"]))
    assert dy_km == pytest.approx(0.5 * KM_PER_DEGREE)
    np.testing.assert_allclose(dx_km, 0.25 * KM_PER_DEGREE * np.cos(np.radians(grid.y.values)), rtol=1e-12)
    per_km_y, per_km_x = geometry.cells_per_km(60.0)
    assert per_km_y * dy_km == pytest.approx(1) and per_km_x == pytest.approx(1 / (0.125 * KM_PER_DEGREE))


def test_index_and_coordinates_are_inverse_and_run_past_the_edges():
    grid = lonlat_grid(np.linspace(170, 190, 81), np.linspace(-5, 5, 41))
    geometry = GridGeometry.of(grid)
    rows, cols = np.array([-3, 0, 17, 40, 45]), np.array([-7, 0, 33, 80, 90])
    np.testing.assert_allclose(geometry.x_of(cols)[1:4], grid.x.values[cols[1:4]])
    back_rows, back_cols = geometry.index(geometry.x_of(cols), geometry.y_of(rows))
    assert back_rows.tolist() == rows.tolist() and back_cols.tolist() == cols.tolist()


def test_catalogue_longitudes_map_into_the_grid_convention():
    """185° and −175° are the same point on a grid spanning 170°–190°; on a −180..180 grid, 185° is −175°."""
    regional = GridGeometry.of(lonlat_grid(np.linspace(170, 190, 81), np.linspace(-5, 5, 41)))
    assert regional.grid_longitude([-175.0, 185.0, 175.0, 535.0]).tolist() == [185.0, 185.0, 175.0, 175.0]
    world = GridGeometry.of(lonlat_grid(-180 + 0.25 * np.arange(1440), np.linspace(-5, 5, 41)))
    assert world.wraps and not regional.wraps
    assert world.grid_longitude([185.0, 179.8, -179.95]).tolist() == pytest.approx([-175.0, 179.8, -179.95])
    # A point just west of −180 belongs to the first column, one just east of the last centre to the last.
    assert world.index(world.grid_longitude([179.9, 179.8]), [0.0, 0.0])[1].tolist() == [0, 1439]


def test_distances_are_great_circle_on_lonlat_and_planar_in_feet():
    world = GridGeometry.of(lonlat_grid(-180 + 0.25 * np.arange(1440), np.linspace(-5, 5, 41)))
    distance, nearest = world.nearest_km([179.95, 0.0], [0.0, 45.0], [-179.95, 10.0, 0.0], [0.0, 0.0, 45.01])
    assert nearest.tolist() == [0, 2]
    assert distance == pytest.approx([haversine_km(179.95, 0, -179.95, 0), haversine_km(0, 45, 0, 45.01)], rel=1e-6)
    x, y = world.moved(0.0, 60.0, 10.0, 5.0)  # 10 km east and 5 km north at 60°N
    assert float(x) == pytest.approx(10.0 / (KM_PER_DEGREE * math.cos(math.radians(60.0))), rel=1e-9)
    assert float(y) == pytest.approx(60.0 + 5.0 / KM_PER_DEGREE, rel=1e-12)

    feet = canonical_grid(np.full((50, 60), -4000.0), 1000.0 * np.arange(60), 1000.0 * np.arange(50), geographic=False,
                          crs=FEET)
    geometry = GridGeometry.of(feet)
    assert geometry.cell_size_km() == pytest.approx((0.3048006, 0.3048006), rel=1e-6)
    distance, _ = geometry.nearest_km([0.0], [0.0], [3000.0], [4000.0])  # 5000 ft
    assert distance[0] == pytest.approx(5.0 * 0.3048006, rel=1e-6)


def test_lonlat_round_trip_through_a_projected_crs():
    utm = CRS.from_epsg(32626).to_wkt()
    grid = canonical_grid(np.full((20, 30), -4000.0), 400_000 + 1000.0 * np.arange(30), 4_200_000 + 1000.0 * np.arange(20),
                          geographic=False, crs=utm)
    geometry = GridGeometry.of(grid)
    x, y = geometry.from_lonlat([-28.0, -27.5], [38.0, 38.2])
    lon, lat = geometry.to_lonlat(x, y)
    np.testing.assert_allclose(lon, [-28.0, -27.5], atol=1e-9)
    np.testing.assert_allclose(lat, [38.0, 38.2], atol=1e-9)


def test_a_score_dataset_has_the_geometry_of_its_grid():
    grid = lonlat_grid(np.arange(-30, -20, 0.25), np.arange(58, 62, 0.5))
    ds = xr.Dataset({"elevation": grid}, attrs={"geographic": 1, "crs": WGS84_WKT})
    assert GridGeometry.of(ds) == GridGeometry.of(grid)
    transform = GridGeometry.of(grid).north_up_transform()
    assert (transform.c, transform.f) == pytest.approx((-30.125, 61.75))  # the north-west corner of the grid
