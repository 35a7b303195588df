"""Tests for seamountae.grid: every reader variant yields the canonical grid, bad input fails in one line."""

from __future__ import annotations

import os
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import rasterio
import xarray as xr
from rasterio.crs import CRS
from rasterio.transform import Affine

from seamountae.errors import SeamountaeError
from seamountae.geometry import KM_PER_DEGREE, GridGeometry, haversine_km
from seamountae.grid import (
    open_grid,
    WGS84_WKT,
    canonical_grid,
    read_grid,
    to_cf_dataset,
    write_grid,
)

AZORES = Path(__file__).resolve().parents[2] / "shared" / "data" / "azores" / "azores_bathy_1m.nc"
UTM26N = CRS.from_epsg(32626).to_wkt()

# A 3 x 4 lon/lat grid, ascending, 0.5 degree spacing; one land cell (+50 m) and one NaN.
LON = np.array([-30.0, -29.5, -29.0, -28.5])
LAT = np.array([38.0, 38.5, 39.0])
Z = np.array([[-1000.0, -1500.0, -2000.0, np.nan], [-1200.0, 50.0, -2500.0, -3000.0], [-900.0, -800.0, -700.0, -600.0]])


def write_nc(path, values=Z, x=LON, y=LAT, xname="lon", yname="lat", xattrs=None, yattrs=None, zname="z", zattrs=None, encoding=None, extra=None):
    """Write a small netCDF grid with the given coordinate names and attributes; return its path."""
    ds = xr.Dataset(
        {zname: ((yname, xname), values, zattrs or {})},
        coords={yname: (yname, y, yattrs or {}), xname: (xname, x, xattrs or {})},
    )
    for name, (dims, data, attrs) in (extra or {}).items():
        ds[name] = xr.Variable(dims, data, attrs)
    ds.to_netcdf(path, engine="netcdf4", encoding={zname: encoding} if encoding else None)
    return path


def from_origin(west, north, dx, dy):
    # rasterio's own from_origin uses a deprecated affine operator, an error under filterwarnings.
    return Affine(dx, 0.0, west, 0.0, -dy, north)


def write_tif(path, values, transform, crs, nodata=None, dtype="float32"):
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype=dtype, crs=crs, transform=transform, nodata=nodata) as dst:
        dst.write(values.astype(dtype), 1)
    return path


def assert_canonical(grid, geographic):
    assert grid.name == "elevation" and grid.dtype == np.float32
    assert grid.dims == ("y", "x")
    for c in ("x", "y"):
        coord = grid[c].values
        assert coord.dtype == np.float64
        step = np.diff(coord)
        assert (step > 0).all() and np.allclose(step, step[0], rtol=1e-9)
    assert grid.attrs["units"] == "m"
    assert grid.attrs["geographic"] == int(geographic)
    if geographic:
        assert grid.attrs["crs"] == WGS84_WKT
        assert grid["x"].min() >= -180 and grid["x"].max() <= 180
    assert not (grid.values > 0).any()


def raises(match, fn, *args, **kwargs):
    """Call fn, expect SeamountaeError matching `match`, and check the message is one line."""
    with pytest.raises(SeamountaeError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


# --- netCDF readers ---------------------------------------------------------------------------


def test_cf_lon_lat(tmp_path):
    path = write_nc(tmp_path / "cf.nc", xattrs={"units": "degrees_east"}, yattrs={"units": "degrees_north"})
    grid = read_grid(path)
    assert_canonical(grid, geographic=True)
    np.testing.assert_array_equal(grid["x"], LON)
    np.testing.assert_array_equal(grid["y"], LAT)
    expected = np.where(Z > 0, np.nan, Z)
    np.testing.assert_array_equal(grid.values, expected.astype(np.float32))
    assert grid.attrs["source"] == str(path)


def test_mask_land_false_keeps_land(tmp_path):
    grid = read_grid(write_nc(tmp_path / "cf.nc"), mask_land=False)
    assert grid.values[1, 1] == 50.0


def test_longitude_latitude_names_without_units(tmp_path):
    path = write_nc(tmp_path / "names.nc", xname="longitude", yname="latitude")
    grid = read_grid(path)
    assert_canonical(grid, geographic=True)
    np.testing.assert_array_equal(grid["x"], LON)


def test_transposed_lon_lat_variable(tmp_path):
    ds = xr.Dataset(
        {"z": (("lon", "lat"), Z.T)},
        coords={"lat": ("lat", LAT, {"units": "degrees_north"}), "lon": ("lon", LON, {"units": "degrees_east"})},
    )
    ds.to_netcdf(tmp_path / "t.nc")
    grid = read_grid(tmp_path / "t.nc")
    assert grid.shape == (3, 4)
    assert grid.values[2, 3] == -600.0


def test_gmt_xy_without_units_is_geographic_with_one_warning(tmp_path, caplog):
    path = write_nc(tmp_path / "gmt.nc", xname="x", yname="y")
    with caplog.at_level("WARNING", logger="seamountae"):
        grid = read_grid(path)
        open_grid(path).close()
    assert_canonical(grid, geographic=True)
    np.testing.assert_array_equal(grid["y"], LAT)
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all("records no CRS" in w and "--crs EPSG:" in w for w in warnings)  # one a read
    caplog.clear()
    with caplog.at_level("WARNING", logger="seamountae"):
        assert read_grid(path, crs="EPSG:4326").attrs["geographic"] == 1
    assert not caplog.records  # the assumption confirmed


def test_gmt_xy_without_units_large_values_needs_a_crs(tmp_path):
    x, y = 500000.0 + 1000.0 * np.arange(4), 4200000.0 + 1000.0 * np.arange(3)
    path = write_nc(tmp_path / "utm.nc", x=x, y=y, xname="x", yname="y")
    assert "utm.nc" in raises("records no CRS.*--crs EPSG:", read_grid, path)
    grid = read_grid(path, crs="EPSG:32626")
    assert_canonical(grid, geographic=False)
    assert CRS.from_wkt(grid.attrs["crs"]) == CRS.from_epsg(32626)


def test_projected_netcdf_with_grid_mapping(tmp_path):
    x, y = 400000.0 + 500.0 * np.arange(4), 4300000.0 + 500.0 * np.arange(3)
    path = write_nc(
        tmp_path / "proj.nc", x=x, y=y, xname="x", yname="y",
        xattrs={"units": "m"}, yattrs={"units": "m"}, zattrs={"grid_mapping": "crs"},
        extra={"crs": ((), np.int32(0), {"crs_wkt": UTM26N})},
    )
    grid = read_grid(path)
    assert_canonical(grid, geographic=False)
    assert CRS.from_wkt(grid.attrs["crs"]) == CRS.from_epsg(32626)
    np.testing.assert_array_equal(grid["x"], x)


def test_projected_coordinates_in_km(tmp_path):
    x, y = 400.0 + 0.5 * np.arange(4), 4300.0 + 0.5 * np.arange(3)
    grid = read_grid(write_nc(tmp_path / "km.nc", x=x, y=y, xname="x", yname="y", xattrs={"units": "km"}, yattrs={"units": "km"}))
    assert grid.attrs["geographic"] == 0
    np.testing.assert_allclose(grid["x"], x * 1000)


def test_bounds_variables_are_not_grids(tmp_path):
    path = write_nc(
        tmp_path / "bnds.nc", yattrs={"bounds": "lat_bnds"},
        extra={"lat_bnds": (("lat", "nv"), np.stack([LAT - 0.25, LAT + 0.25], axis=1), {})},
    )
    assert read_grid(path).shape == (3, 4)


def test_length_one_leading_dimension_is_dropped(tmp_path):
    ds = xr.Dataset({"z": (("time", "lat", "lon"), Z[None])}, coords={"lat": LAT, "lon": LON, "time": [0.0]})
    ds.to_netcdf(tmp_path / "time.nc")
    assert read_grid(tmp_path / "time.nc").shape == (3, 4)


@pytest.mark.skipif(not AZORES.exists(), reason="shared Azores grid not available")
def test_real_azores_grid():
    grid = read_grid(AZORES)
    assert grid.shape == (451, 601)
    assert_canonical(grid, geographic=True)
    assert grid["x"].min() >= -33 and grid["x"].max() <= -23
    assert grid["y"].min() >= 35.5 and grid["y"].max() <= 43
    finite = grid.values[np.isfinite(grid.values)]
    assert np.isnan(grid.values).any() and (finite <= 0).all()
    assert finite.min() < -4000


def test_grd_extension(tmp_path):
    grid = read_grid(write_nc(tmp_path / "bathy.grd", xname="x", yname="y"))
    assert_canonical(grid, geographic=True)
    assert grid.shape == (3, 4)


@pytest.mark.parametrize("pixel", [False, True])
def test_old_gmt_layout(tmp_path, pixel):
    path = tmp_path / "old.grd"
    half = 0.25 if pixel else 0.0  # pixel registration: the ranges give cell edges
    with netCDF4.Dataset(path, "w", format="NETCDF3_CLASSIC") as nc:
        nc.createDimension("side", 2)
        nc.createDimension("xysize", 12)
        extents = (("x_range", (-30 - half, -28.5 + half)), ("y_range", (38 - half, 39 + half)), ("z_range", (-3, 0.05)))
        for name, values in extents:
            nc.createVariable(name, "f8", ("side",))[:] = values
        nc.createVariable("dimension", "i4", ("side",))[:] = (4, 3)
        z = nc.createVariable("z", "f4", ("xysize",))
        z.node_offset = int(pixel)
        z[:] = np.nan_to_num(Z[::-1], nan=-1.0).ravel() / 1000  # rows stored from the north
        nc["z_range"].units = "km"
    grid = read_grid(path)
    assert_canonical(grid, geographic=True)
    np.testing.assert_allclose(grid["x"], LON)
    np.testing.assert_allclose(grid["y"], LAT)
    np.testing.assert_allclose(grid.values[[0, 2], [0, 3]], [-1000.0, -600.0], rtol=1e-6)


# --- GeoTIFF ----------------------------------------------------------------------------------


def test_geotiff_geographic_int16_nodata(tmp_path):
    values = np.array([[-100, -32768], [-300, -400], [-500, 20]], dtype=np.int16)  # north row first
    path = write_tif(tmp_path / "geo.tif", values, from_origin(-30.0, 40.0, 0.5, 0.25), "EPSG:4326", nodata=-32768, dtype="int16")
    grid = read_grid(path)
    assert_canonical(grid, geographic=True)
    np.testing.assert_allclose(grid["x"], [-29.75, -29.25])  # cell centres
    np.testing.assert_allclose(grid["y"], [39.375, 39.625, 39.875])  # flipped to ascending
    np.testing.assert_array_equal(grid.values, [[-500, np.nan], [-300, -400], [-100, np.nan]])


def test_geotiff_projected_with_nodata(tmp_path):
    values = np.array([[-10.0, -9999.0, -30.0], [-40.0, -50.0, -60.0]])
    path = write_tif(tmp_path / "utm.tiff", values, from_origin(400000, 4300000, 100, 100), "EPSG:32626", nodata=-9999)
    grid = read_grid(path)
    assert_canonical(grid, geographic=False)
    assert CRS.from_wkt(grid.attrs["crs"]) == CRS.from_epsg(32626)
    np.testing.assert_allclose(grid["x"], [400050, 400150, 400250])
    np.testing.assert_allclose(grid["y"], [4299850, 4299950])
    assert np.isnan(grid.values[1, 1]) and grid.values[0, 0] == -40.0


def test_rotated_geotiff_is_rejected(tmp_path):
    path = write_tif(tmp_path / "rot.tif", np.full((3, 3), -5.0), Affine(0.5, 0.1, -30, 0.1, -0.5, 40), "EPSG:4326")
    assert "rot.tif" in raises("rotated", read_grid, path)


def test_multiband_geotiff_needs_band(tmp_path):
    path = tmp_path / "two.tif"
    with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=2, dtype="float32",
                       crs="EPSG:4326", transform=from_origin(-30, 40, 1, 1)) as dst:
        dst.write(np.stack([np.full((2, 2), -1.0), np.full((2, 2), -2.0)]).astype("float32"))
    raises("2 bands.*--var", read_grid, path)
    assert (read_grid(path, var="2").values == -2.0).all()
    raises("no band '3'", read_grid, path, var="3")


# --- units, sign conventions, orientation -----------------------------------------------------


def test_km_units(tmp_path):
    grid = read_grid(write_nc(tmp_path / "km.nc", values=Z / 1000, zattrs={"units": "km"}))
    assert grid.values[0, 2] == pytest.approx(-2000.0)


def test_positive_down(tmp_path):
    grid = read_grid(write_nc(tmp_path / "down.nc", values=-Z, zattrs={"positive": "down"}))
    assert grid.values[0, 2] == -2000.0 and np.isnan(grid.values[1, 1])


def test_depth_standard_name(tmp_path):
    grid = read_grid(write_nc(tmp_path / "depth.nc", values=-Z, zattrs={"standard_name": "sea_floor_depth_below_sea_level"}))
    assert grid.values[0, 2] == -2000.0


def test_depth_positive_argument_overrides_attributes(tmp_path):
    plain = write_nc(tmp_path / "plain.nc", values=-Z)
    assert read_grid(plain, depth_positive=True).values[0, 2] == -2000.0
    down = write_nc(tmp_path / "down.nc", values=Z, zattrs={"positive": "down"})
    assert read_grid(down, depth_positive=False).values[0, 2] == -2000.0


def test_descending_y_and_x(tmp_path):
    grid = read_grid(write_nc(tmp_path / "desc.nc", values=Z[::-1, ::-1], x=LON[::-1], y=LAT[::-1]))
    np.testing.assert_array_equal(grid["x"], LON)
    np.testing.assert_array_equal(grid["y"], LAT)
    np.testing.assert_array_equal(grid.values, np.where(Z > 0, np.nan, Z).astype(np.float32))


def test_regional_0_360_longitudes_shift(tmp_path):
    grid = read_grid(write_nc(tmp_path / "east.nc", x=LON + 360, xattrs={"units": "degrees_east"}))
    np.testing.assert_allclose(grid["x"], LON)
    assert grid.values[0, 0] == -1000.0


@pytest.mark.parametrize("gridline", [True, False])
def test_global_0_360_grid_is_rolled(tmp_path, gridline):
    x = np.arange(0.0, 361.0, 30.0) if gridline else np.arange(15.0, 360.0, 30.0)
    values = np.tile(-x, (3, 1))  # each column holds minus its own longitude
    grid = read_grid(write_nc(tmp_path / "global.nc", values=values, x=x, y=LAT))
    expected_x = np.arange(-180.0, 180.0, 30.0) if gridline else np.arange(-165.0, 180.0, 30.0)
    np.testing.assert_allclose(grid["x"], expected_x, atol=1e-9)
    np.testing.assert_allclose(grid.values[0], -(expected_x % 360))


@pytest.mark.parametrize("reader", ["read_grid", "open_grid"])
def test_global_gridline_minus_180_180_grid_reads_each_meridian_once(tmp_path, reader):
    """-180..180 with both ends: the last column repeats the first, so a wrapping read would be one off."""
    import seamountae.grid as grids

    x = np.arange(-180.0, 181.0, 30.0)
    values = np.tile(-x - 1000.0, (3, 1))
    grid = getattr(grids, reader)(write_nc(tmp_path / "global.nc", values=values, x=x, y=LAT))
    np.testing.assert_allclose(grid["x"], np.arange(-180.0, 180.0, 30.0))
    np.testing.assert_allclose(grid[0].values, values[0, :-1])
    assert GridGeometry.of(grid).wraps and grids.read_window(grid, 0, 1, 11, 14, wrap=True)[0].tolist() == [-1150.0, -820.0, -850.0]


def test_int16_with_fill_value(tmp_path):
    path = write_nc(tmp_path / "i16.nc", encoding={"dtype": "int16", "_FillValue": -32768})
    with netCDF4.Dataset(path) as nc:
        assert nc["z"].dtype == np.int16
    grid = read_grid(path)
    assert grid.dtype == np.float32
    assert np.isnan(grid.values[0, 3]) and grid.values[0, 2] == -2000.0


# --- variable selection -----------------------------------------------------------------------


def two_var_file(tmp_path):
    return write_nc(tmp_path / "two.nc", extra={"gravity": (("lat", "lon"), np.ones((3, 4)), {})})


def test_var_selects_variable(tmp_path):
    assert read_grid(two_var_file(tmp_path), var="z").values[0, 0] == -1000.0


def test_several_variables_need_var(tmp_path):
    msg = raises("several 2-D variables", read_grid, two_var_file(tmp_path))
    assert "two.nc" in msg and "gravity" in msg and "z" in msg and "--var NAME" in msg


def test_unknown_var(tmp_path):
    msg = raises("'depth' does not exist", read_grid, two_var_file(tmp_path), var="depth")
    assert "two.nc" in msg and "z, gravity" in msg


def test_var_that_is_not_a_grid(tmp_path):
    path = write_nc(tmp_path / "v.nc", extra={"crs": ((), np.int32(0), {})})
    assert "v.nc" in raises("'crs' is not a 2-D grid", read_grid, path, var="crs")


def test_no_2d_variable(tmp_path):
    xr.Dataset({"track": ("n", np.arange(5.0))}).to_netcdf(tmp_path / "track.nc")
    assert "track.nc" in raises("no 2-D variable found", read_grid, tmp_path / "track.nc")


# --- invalid content --------------------------------------------------------------------------


def test_all_nan(tmp_path):
    path = write_nc(tmp_path / "empty.nc", values=np.full((3, 4), np.nan))
    msg = raises("contains no valid cells", read_grid, path)
    assert "empty.nc" in msg and "land" not in msg


def test_all_land(tmp_path):
    path = write_nc(tmp_path / "land.nc", values=np.full((3, 4), 100.0))
    msg = raises("contains no valid cells after masking land", read_grid, path)
    assert "land.nc" in msg
    assert read_grid(path, mask_land=False).values.max() == 100.0


def test_text_file_named_nc(tmp_path):
    path = tmp_path / "notes.nc"
    path.write_text("lon lat depth\n-30 38 -1000\n")
    assert "notes.nc" in raises("is not a readable netCDF or GeoTIFF file", read_grid, path)


def test_text_file_named_tif(tmp_path):
    path = tmp_path / "notes.tif"
    path.write_text("hello")
    assert "notes.tif" in raises("is not a readable netCDF or GeoTIFF file", read_grid, path)


def test_truncated_nc(tmp_path):
    good = write_nc(tmp_path / "good.nc")
    bad = tmp_path / "cut.nc"
    bad.write_bytes(good.read_bytes()[:100])
    assert "cut.nc" in raises("is not a readable netCDF or GeoTIFF file", read_grid, bad)


@pytest.mark.skipif(not AZORES.exists(), reason="shared Azores grid not available")
def test_truncated_real_file(tmp_path):
    for size in (100, AZORES.stat().st_size // 2):
        bad = tmp_path / f"azores_{size}.nc"
        bad.write_bytes(AZORES.read_bytes()[:size])
        assert bad.name in raises("is not a readable netCDF or GeoTIFF file", read_grid, bad)


def test_truncated_tif(tmp_path):
    good = write_tif(tmp_path / "good.tif", np.full((50, 50), -5.0), from_origin(-30, 40, 0.1, 0.1), "EPSG:4326")
    bad = tmp_path / "cut.tif"
    bad.write_bytes(good.read_bytes()[:100])
    assert "cut.tif" in raises("is not a readable netCDF or GeoTIFF file", read_grid, bad)


def test_plain_tiff_without_georeferencing(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "photo.tif", np.full((4, 4), -5.0, dtype=np.float32))
    assert "photo.tif" in raises("no georeferencing", read_grid, tmp_path / "photo.tif")


def test_directory(tmp_path):
    folder = tmp_path / "adir.nc"
    folder.mkdir()
    assert "adir.nc" in raises("is a directory", read_grid, folder)


def test_missing_file(tmp_path):
    assert "nothere.nc" in raises("file not found", read_grid, tmp_path / "nothere.nc")


def test_non_monotonic_coordinates(tmp_path):
    path = write_nc(tmp_path / "zigzag.nc", x=np.array([-30.0, -29.0, -29.5, -28.5]))
    assert "zigzag.nc" in raises("x coordinates are not monotonic", read_grid, path)


def test_nan_coordinates(tmp_path):
    path = write_nc(tmp_path / "nanx.nc", x=np.array([-30.0, np.nan, -29.0, -28.5]))
    assert "nanx.nc" in raises("x coordinates contain NaN", read_grid, path)


def test_latitudes_beyond_90(tmp_path):
    path = write_nc(tmp_path / "lat.nc", y=np.array([80.0, 90.0, 100.0]), yattrs={"units": "degrees_north"})
    assert "lat.nc" in raises("beyond 90", read_grid, path)


def test_invalid_crs_wkt(tmp_path):
    path = write_nc(
        tmp_path / "badcrs.nc", x=1000.0 * np.arange(4), y=1000.0 * np.arange(3), xname="x", yname="y",
        zattrs={"grid_mapping": "crs"}, extra={"crs": ((), np.int32(0), {"crs_wkt": "not a crs"})},
    )
    assert "badcrs.nc" in raises("not valid WKT", read_grid, path)


def test_irregular_spacing(tmp_path):
    path = write_nc(tmp_path / "irregular.nc", y=np.array([38.0, 38.5, 39.5]))
    assert "irregular.nc" in raises("y coordinates are irregularly spaced", read_grid, path)


def test_float32_coordinate_noise_is_tolerated(tmp_path):
    x = (-33 + np.arange(601) / 60).astype(np.float32)
    y = (35.5 + np.arange(3) / 60).astype(np.float32)
    grid = read_grid(write_nc(tmp_path / "f32.nc", values=np.full((3, 601), -10.0), x=x, y=y, xname="x", yname="y"))
    assert grid["x"].values[-1] == pytest.approx(-23.0, abs=1e-5)
    assert np.allclose(np.diff(grid["x"].values), 1 / 60, rtol=1e-9)


def test_fewer_than_two_cells(tmp_path):
    path = write_nc(tmp_path / "row.nc", values=Z[:1], y=LAT[:1])
    assert "row.nc" in raises("only 1 cell", read_grid, path)


def test_missing_coordinates(tmp_path):
    xr.Dataset({"z": (("rows", "cols"), Z)}).to_netcdf(tmp_path / "bare.nc")
    assert "bare.nc" in raises("no coordinate values", read_grid, tmp_path / "bare.nc")


def test_file_is_closed_after_reading(tmp_path):
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc")
    path = write_nc(tmp_path / "closed.nc")
    read_grid(path)
    assert not any(os.path.realpath(fd) == str(path.resolve()) for fd in fds.iterdir())


# --- canonical_grid, geometry helpers ---------------------------------------------------------


def test_canonical_grid_in_memory():
    grid = canonical_grid(Z, LON, LAT, geographic=True)
    assert_canonical(grid, geographic=True)
    assert grid.attrs["source"] == ""
    projected = canonical_grid(Z, LON * 1000, LAT * 1000, geographic=False, crs=UTM26N)
    assert projected.attrs["crs"] == UTM26N and projected.attrs["geographic"] == 0
    assert "grid" in raises("no valid cells", canonical_grid, np.full((3, 4), np.nan), LON, LAT, True)


def test_cell_size_geographic_uses_cos_latitude():
    lat = np.array([59.0, 60.0, 61.0])
    grid = canonical_grid(-np.ones((3, 4)), LON, lat, geographic=True)
    dy, dx = GridGeometry.of(grid).cell_size_km()
    assert dy == pytest.approx(KM_PER_DEGREE)
    assert dx == pytest.approx(0.5 * KM_PER_DEGREE * 0.5, rel=1e-9)  # cos(60°) = 0.5


def test_cell_size_projected():
    grid = canonical_grid(-np.ones((3, 4)), 250.0 * np.arange(4), 100.0 * np.arange(3), geographic=False)
    assert GridGeometry.of(grid).cell_size_km() == pytest.approx((0.1, 0.25))


def test_haversine():
    assert KM_PER_DEGREE == pytest.approx(111.195, abs=1e-3)
    assert haversine_km(-30, 38, -30, 39) == pytest.approx(KM_PER_DEGREE, rel=1e-9)
    assert haversine_km(0, 60, 1, 60) == pytest.approx(KM_PER_DEGREE * 0.5, rel=1e-3)
    d = haversine_km(np.array([0.0, 10.0]), 0.0, np.array([0.0, 190.0]), 0.0)
    np.testing.assert_allclose(d, [0.0, np.pi * 6371.0])


# --- CF datasets and writing ------------------------------------------------------------------


def test_to_cf_dataset_geographic():
    grid = canonical_grid(Z, LON, LAT, geographic=True)
    slope = xr.DataArray(np.ones(grid.shape, np.float32), dims=("y", "x"), attrs={"units": "degree", "long_name": "slope"})
    ds = to_cf_dataset({"elevation": grid, "slope": slope}, grid, attrs={"title": "t"})
    assert ds.attrs["Conventions"] == "CF-1.8" and ds.attrs["title"] == "t" and ds.attrs["geographic"] == 1
    assert ds["slope"].dims == ("lat", "lon") and "crs" not in ds
    assert ds["lat"].attrs == {"units": "degrees_north", "standard_name": "latitude", "long_name": "latitude", "axis": "Y"}
    assert ds["lon"].attrs["units"] == "degrees_east" and ds["lon"].attrs["axis"] == "X"
    assert ds["slope"].attrs == {"units": "degree", "long_name": "slope"}
    np.testing.assert_array_equal(ds["lon"], LON)


def test_to_cf_dataset_projected():
    grid = canonical_grid(Z, 400000 + 500.0 * np.arange(4), 4300000 + 500.0 * np.arange(3), False, crs=UTM26N)
    ds = to_cf_dataset({"elevation": grid}, grid)
    assert ds["elevation"].dims == ("y", "x") and ds.attrs["geographic"] == 0
    assert ds["x"].attrs["standard_name"] == "projection_x_coordinate" and ds["x"].attrs["units"] == "m"
    assert ds["y"].attrs["standard_name"] == "projection_y_coordinate"
    assert ds["crs"].ndim == 0 and ds["crs"].attrs["crs_wkt"] == UTM26N == ds["crs"].attrs["spatial_ref"]
    assert ds["elevation"].attrs["grid_mapping"] == "crs" and ds["elevation"].attrs["units"] == "m"
    assert "crs" not in ds["elevation"].attrs and "geographic" not in ds["elevation"].attrs
    with pytest.raises(ValueError):
        to_cf_dataset({"bad": grid.isel(x=slice(0, 2))}, grid)


@pytest.mark.parametrize("name", ["out.nc", "out.tif"])
@pytest.mark.parametrize("geographic", [True, False])
def test_round_trip(tmp_path, name, geographic):
    if geographic:
        grid = canonical_grid(Z, LON, LAT, True)
    else:
        grid = canonical_grid(Z, 400000 + 500.0 * np.arange(4), 4300000 + 250.0 * np.arange(3), False, crs=UTM26N)
    path = tmp_path / name
    write_grid(grid, path, attrs={"title": "round trip"})
    back = read_grid(path)
    np.testing.assert_array_equal(back.values, grid.values)
    np.testing.assert_allclose(back["x"], grid["x"], rtol=0, atol=1e-9 * np.abs(grid["x"]).max())
    np.testing.assert_allclose(back["y"], grid["y"], rtol=0, atol=1e-9 * np.abs(grid["y"]).max())
    assert back.attrs["geographic"] == grid.attrs["geographic"]
    assert CRS.from_wkt(back.attrs["crs"]) == CRS.from_wkt(grid.attrs["crs"])
    assert not list(tmp_path.glob("*.part"))


def test_netcdf_output_is_compressed_cf(tmp_path):
    grid = canonical_grid(Z, LON, LAT, True)
    write_grid(grid, tmp_path / "out.nc")
    with netCDF4.Dataset(tmp_path / "out.nc") as nc:
        assert nc.data_model == "NETCDF4" and nc.Conventions == "CF-1.8"
        assert nc["elevation"].filters()["zlib"] and nc["elevation"].filters()["complevel"] == 4
        assert nc["elevation"].dtype == np.float32
        assert "_FillValue" not in nc["lon"].ncattrs()


def test_geotiff_output_is_north_up(tmp_path):
    grid = canonical_grid(Z, LON, LAT, True)
    write_grid(grid, tmp_path / "out.tif")
    with rasterio.open(tmp_path / "out.tif") as src:
        assert src.transform.e < 0 and src.crs.is_geographic and np.isnan(src.nodata)
        assert src.read(1)[0, 0] == -900.0  # the northernmost row comes first


def test_write_refuses_existing_output(tmp_path):
    grid = canonical_grid(Z, LON, LAT, True)
    path = tmp_path / "out.nc"
    write_grid(grid, path)
    assert "out.nc" in raises("output exists", write_grid, grid, path)
    assert read_grid(path).values[0, 0] == -1000.0
    write_grid(canonical_grid(Z * 2, LON, LAT, True), path, overwrite=True)
    assert read_grid(path).values[0, 0] == -2000.0


def test_windows_are_the_callers_own_and_equal_from_memory_and_from_file(tmp_path, monkeypatch):
    """read_window hands a window read from a file straight over, and copies one of a grid in memory."""
    import seamountae.grid as grids

    rng = np.random.default_rng(0)
    z = rng.normal(-4000, 500, size=(40, 60)).astype(np.float32)
    z[5:9, 10:20] = np.nan
    grid = grids.canonical_grid(z, np.arange(60) * 1000.0, np.arange(40) * 1000.0, False, "", "test")
    grids.write_grid(grid, tmp_path / "g.nc")
    lazy = grids.open_grid(tmp_path / "g.nc")
    try:
        for r0, r1, c0, c1 in ((0, 40, 0, 60), (3, 17, 8, 51), (-2, 5, 55, 63)):
            in_memory, from_file = grids.read_window(grid, r0, r1, c0, c1), grids.read_window(lazy, r0, r1, c0, c1)
            np.testing.assert_array_equal(in_memory, from_file)
            in_memory[:] = 0.0
            from_file[:] = 0.0
        assert np.array_equal(grid.values, grids.read_window(lazy, 0, 40, 0, 60), equal_nan=True)
        whole = grids.read_window(grid, -3, 38, 2, 63)
        monkeypatch.setattr(grids, "READ_STRIP_CELLS", 100)  # large windows are read in strips of rows
        for source in (grid, lazy):
            np.testing.assert_array_equal(grids.read_window(source, -3, 38, 2, 63), whole)
    finally:
        lazy.close()
