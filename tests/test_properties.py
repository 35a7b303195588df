"""Property-based tests: random grids, catalogues and score maps thrown at the readers and at `detect`.

Whatever comes in, the only exception allowed out is the project's own SeamountaeError (a message
for the user); anything else is a bug. What does come out must honour the conventions.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from seamountae.catalogue import read_catalogue
from seamountae.detection import detect
from seamountae.errors import SeamountaeError
from seamountae.candidates import CANDIDATE_COLUMNS, CandidateRules, find_candidates
from seamountae.evidence import MODEL_COLUMNS, candidates_dataset, shape_columns
from seamountae.grid import read_grid

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    derandomize=True)  # the same examples on every run: a failure is reproducible


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def only_our_error(call):
    """call() → its result, or None if it raised SeamountaeError; any other exception fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning is a message the user did not ask for: a failure too
        try:
            return call()
        except SeamountaeError as exc:
            message = str(exc)
            assert message and "\n" not in message, repr(message)
            return None


# -------------------------------------------------------------------------------------------- grids

DTYPES = ["float32", "float64", "int16", "int32"]
NAMES = [("lat", "lon"), ("latitude", "longitude"), ("y", "x"), ("northing", "easting")]


@st.composite
def grid_files(draw):
    """(description, dataset) of a netCDF grid: shapes, NaN patterns, coordinate orders and names, dtypes."""
    ny, nx = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    dtype = draw(st.sampled_from(DTYPES))
    ydim, xdim = draw(st.sampled_from(NAMES))
    geographic = xdim in ("lon", "longitude") or draw(st.booleans())
    if geographic:
        x0 = draw(st.floats(-200, 360, allow_nan=False))
        dx = draw(st.floats(1e-3, 1.0) if nx > 1 else st.just(1.0))
        y0 = draw(st.floats(-90, 90, allow_nan=False))
        dy = draw(st.floats(1e-3, 1.0))
    else:
        x0, y0 = draw(st.floats(-1e6, 1e6)), draw(st.floats(-1e6, 1e6))
        dx, dy = draw(st.floats(10, 5000)), draw(st.floats(10, 5000))
    x = x0 + dx * np.arange(nx)
    y = y0 + dy * np.arange(ny)
    if draw(st.booleans()):
        x = x[::-1]
    if draw(st.booleans()):
        y = y[::-1]
    if draw(st.integers(0, 9)) == 0 and nx > 2:  # out of order
        x = x[np.r_[1, 0, 2:nx]]
    values = draw(hnp.arrays(np.float64, (ny, nx), elements=st.floats(-11000, 9000, allow_nan=False)))
    pattern = draw(st.sampled_from(["none", "random", "all", "rows", "columns", "land"]))
    if pattern == "random":
        values[draw(hnp.arrays(bool, (ny, nx)))] = np.nan
    elif pattern == "all":
        values[:] = np.nan
    elif pattern == "rows":
        values[:: draw(st.integers(1, 3))] = np.nan
    elif pattern == "columns":
        values[:, :: draw(st.integers(1, 3))] = np.nan
    elif pattern == "land":
        values = np.abs(values)
    attrs = {}
    if draw(st.booleans()):
        attrs["positive"] = draw(st.sampled_from(["up", "down"]))
    if draw(st.booleans()):
        attrs["units"] = draw(st.sampled_from(["m", "km", "meters", ""]))
    encoding = {}
    if dtype.startswith("int"):
        fill = np.iinfo(dtype).min
        data = np.where(np.isnan(values), fill, np.clip(np.round(values), -32000, 32000)).astype(dtype)
        attrs["_FillValue"] = fill if draw(st.booleans()) else None
        if attrs["_FillValue"] is None:
            del attrs["_FillValue"]
    else:
        data = values.astype(dtype)
    coord_attrs = {}
    if draw(st.booleans()):
        coord_attrs = ({"units": "degrees_east"}, {"units": "degrees_north"}) if geographic else ({"units": "m"}, {"units": "m"})
    else:
        coord_attrs = ({}, {})
    transpose = draw(st.integers(0, 9)) == 0
    dims = (xdim, ydim) if transpose else (ydim, xdim)
    ds = xr.Dataset({"z": (dims, data.T if transpose else data, attrs)},
                    coords={ydim: (ydim, y, coord_attrs[1]), xdim: (xdim, x, coord_attrs[0])})
    return f"{ny}x{nx} {dtype} {ydim}/{xdim} {pattern}", ds, encoding


@SETTINGS
@given(case=grid_files(), depth_positive=st.sampled_from([None, True, False]), mask_land=st.booleans())
def test_read_grid_returns_a_canonical_grid_or_our_error(folder, case, depth_positive, mask_land):
    _, ds, encoding = case
    path = folder / "grid.nc"
    ds.to_netcdf(path, encoding=encoding)
    grid = only_our_error(lambda: read_grid(path, depth_positive=depth_positive, mask_land=mask_land))
    if grid is None:
        return
    assert grid.dims == ("y", "x") and grid.dtype == np.float32
    for axis in ("x", "y"):
        c = grid[axis].values
        assert c.size == 1 or np.all(np.diff(c) > 0), f"{axis} not ascending"
    values = grid.values
    assert np.isfinite(values).any()  # a grid without a single valid cell is reported, not returned
    if mask_land:
        assert not (values[np.isfinite(values)] > 0).any()
    if int(grid.attrs["geographic"]):
        assert np.all(np.abs(grid.y.values) <= 90 + 1e-9)


@st.composite
def catalogue_texts(draw):
    """(suffix, text) of a catalogue: CSV with random columns and cells, GeoJSON, GMT text, or junk."""
    kind = draw(st.sampled_from(["csv", "geojson", "gmt", "junk"]))
    cell = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-1000, 1000).map(str),
                     st.text(alphabet="abc ,;\"'-.e#", max_size=6), st.just(""))
    n = draw(st.integers(0, 6))
    if kind == "csv":
        names = draw(st.lists(st.sampled_from(["lon", "lat", "Longitude", "LAT", "x", "y", "name", "depth", "id", "h m"]),
                              min_size=1, max_size=5))
        sep = draw(st.sampled_from([",", ";", "\t", " "]))
        rows = [sep.join(draw(cell) for _ in names) for _ in range(n)]
        return ".csv", "\n".join([sep.join(names), *rows]) + "\n"
    if kind == "gmt":
        rows = [" ".join(draw(cell) for _ in range(draw(st.integers(1, 4)))) for _ in range(n)]
        prefix = draw(st.sampled_from(["", "# comment\n", "> segment\n"]))
        return ".txt", prefix + "\n".join(rows) + "\n"
    if kind == "geojson":
        coordinate = st.one_of(st.floats(-400, 400), st.none(), st.text(max_size=3), st.booleans())
        geometry = st.one_of(
            st.none(),
            st.fixed_dictionaries({"type": st.just("Point"), "coordinates": st.lists(coordinate, max_size=3)}),
            st.fixed_dictionaries({"type": st.just("MultiPoint"),
                                   "coordinates": st.lists(st.lists(coordinate, max_size=3), max_size=3)}),
            st.fixed_dictionaries({"type": st.sampled_from(["LineString", "Polygon", 3]), "coordinates": st.just([])}),
        )
        feature = st.fixed_dictionaries({"type": st.just("Feature"), "geometry": geometry,
                                         "properties": st.one_of(st.none(), st.dictionaries(
                                             st.sampled_from(["name", "lon", "id", "Height"]),
                                             st.one_of(st.integers(), st.text(max_size=3), st.none()), max_size=3))})
        doc = draw(st.one_of(
            st.fixed_dictionaries({"type": st.just("FeatureCollection"), "features": st.lists(feature, max_size=5)}),
            feature, st.lists(st.integers(), max_size=2), st.just({"type": "Point", "coordinates": [1, 2]})))
        return ".geojson", json.dumps(doc, allow_nan=True)
    raw = draw(st.binary(max_size=80))
    return ".csv", raw.decode("latin-1")


@SETTINGS
@given(case=catalogue_texts())
def test_read_catalogue_returns_finite_coordinates_or_our_error(folder, case):
    suffix, text = case
    path = folder / f"catalogue{suffix}"
    path.write_bytes(text.encode("latin-1", errors="replace") if suffix == ".csv" and "\x00" in text else
                     text.encode("utf-8", errors="surrogatepass"))
    table = only_our_error(lambda: read_catalogue(path))
    if table is None:
        return
    assert list(table.columns[:2]) == ["lon", "lat"]
    assert table["lon"].dtype == np.float64 and table["lat"].dtype == np.float64
    assert np.isfinite(table[["lon", "lat"]].to_numpy()).all()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_tile_takes_any_catalogue_or_says_why_not(folder, grid_file, synthetic, data):
    """Random points (inside, outside, on the edges, repeated) from a catalogue file, through tile."""
    from seamountae.config import defaults
    from seamountae.pipeline import tile_file

    grid, _ = synthetic
    x0, x1, y0, y1 = float(grid.x[0]), float(grid.x[-1]), float(grid.y[0]), float(grid.y[-1])
    lon = st.one_of(st.floats(x0, x1), st.sampled_from([x0, x1, x0 + 360, -400.0, 179.9]), st.floats(-360, 360))
    lat = st.one_of(st.floats(y0, y1), st.sampled_from([y0, y1, 90.0, -90.0]), st.floats(-90, 90))
    points = data.draw(st.lists(st.tuples(lon, lat), max_size=12))
    if points and data.draw(st.booleans()):
        points = points + points[:1]  # a repeated seamount
    catalogue = folder / "points.csv"
    catalogue.write_text("lon,lat\n" + "".join(f"{a!r},{b!r}\n" for a, b in points))
    params = {**defaults("tile"), "patch_km": 24.0, "patch_px": 16}
    patches = only_our_error(lambda: tile_file(grid_file, catalogue, folder / "patches.nc", params, defaults("grid"),
                                               overwrite=True))
    if patches is not None:
        assert patches.sizes["sample"] >= 1 and np.isfinite(patches["patch"].values).any()


# ------------------------------------------------------------------------------------------- detect


@st.composite
def score_datasets(draw):
    """A score dataset as `score` writes it, with random values, holes and spacing."""
    ny, nx = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    spacing = draw(st.sampled_from([1 / 60, 1 / 30, 0.25]))
    y = draw(st.floats(-80, 75)) + spacing * np.arange(ny)
    x = draw(st.floats(-180, 170)) + spacing * np.arange(nx)
    finite = st.floats(-8000, -1, allow_nan=False)
    elevation = draw(hnp.arrays(np.float32, (ny, nx), elements=finite))
    if draw(st.booleans()):  # smooth relief, so that summits and rings exist
        yy, xx = np.mgrid[0:ny, 0:nx]
        cy, cx = draw(st.floats(0, ny)), draw(st.floats(0, nx))
        elevation = (-4000 + draw(st.floats(0, 3500)) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 20.0)).astype(np.float32)
    holes = draw(hnp.arrays(bool, (ny, nx))) if draw(st.booleans()) else np.zeros((ny, nx), bool)
    elevation[holes] = np.nan
    dims = ("y", "x")
    grid = xr.DataArray(elevation, dims=dims, coords={"y": y, "x": x}, attrs={"geographic": 1, "crs": ""})
    patch_km = draw(st.sampled_from([12.0, 24.0, 48.0]))
    rules = CandidateRules(patch_km=patch_km, window_km=(patch_km / 2, 2 * patch_km), radius_ratio=6.0,
                           min_height_m=draw(st.floats(1, 500)), separation_km=draw(st.floats(0.5, 20)),
                           missing_buffer_km=draw(st.floats(0, 20)))
    table = find_candidates(grid, rules) if min(ny, nx) >= 2 else pd.DataFrame(columns=list(CANDIDATE_COLUMNS))
    table["score"] = draw(hnp.arrays(np.float64, len(table), elements=st.floats(0, 1)))
    for name in MODEL_COLUMNS:
        table[name] = np.nan
    table = table.assign(**shape_columns(np.zeros((len(table), 0)), None))  # a model without shape classes
    ds = xr.Dataset({"elevation": (dims, elevation)}, coords={"y": y, "x": x},
                    attrs={"seamountae_kind": "score", "patch_km": patch_km, "patch_px": 16, "stride_px": 2,
                           "geographic": 1, "crs": "", "threshold_auto": draw(st.floats(0, 1))})
    return ds.merge(candidates_dataset(table)) if min(ny, nx) >= 2 else ds


@SETTINGS
@given(scores=score_datasets(),
       threshold=st.one_of(st.just("auto"), st.floats(-1, 2), st.just(float("nan")), st.sampled_from(["0.1", "high", ""])),
       min_height_m=st.floats(0, 2000), min_separation_km=st.floats(-5, 50))
def test_detect_returns_seamounts_or_our_error(scores, threshold, min_height_m, min_separation_km):
    result = only_our_error(lambda: detect(scores, threshold=threshold, min_height_m=min_height_m,
                                           min_separation_km=min_separation_km))
    if result is None:
        return
    table, clusters = result
    assert clusters.shape == scores["elevation"].shape
    assert isinstance(table, pd.DataFrame)
    if len(table):
        assert table["id"].tolist() == list(range(1, len(table) + 1))
        assert (table["height_m"] >= min_height_m).all()
        assert np.isfinite(table[["lon", "lat"]].to_numpy(float)).all()
        assert ((table["score"] >= 0) & (table["score"] <= 1)).all()


@SETTINGS
@given(grid=grid_files())
def test_grid_then_detect_never_crashes(folder, grid):
    """A random grid, read and made into a (fake) score map, through detect."""
    _, ds, encoding = grid
    path = folder / "chain.nc"
    ds.to_netcdf(path, encoding=encoding)
    canonical = only_our_error(lambda: read_grid(path))
    assume(canonical is not None)
    shape = canonical.shape
    rng = np.random.default_rng(0)
    scores = xr.Dataset({"elevation": canonical, "score": (("y", "x"), rng.random(shape, dtype=np.float32)),
                         "relief_m": (("y", "x"), np.full(shape, 500, np.float32))},
                        attrs={"seamountae_kind": "score", "patch_km": 24.0, "patch_px": 16,
                               "geographic": int(canonical.attrs["geographic"]), "crs": canonical.attrs["crs"]})
    only_our_error(lambda: detect(scores))


def test_projected_grid_without_crs_through_detect(folder):
    y, x = np.arange(40) * 1000.0, np.arange(40) * 1000.0
    yy, xx = np.meshgrid(y - 20000, x - 20000, indexing="ij")
    z = (-4000 + 2000 * np.exp(-(yy**2 + xx**2) / 4e7)).astype(np.float32)
    path = folder / "projected.nc"
    xr.Dataset({"z": (("y", "x"), z)}, coords={"y": ("y", y, {"units": "m"}), "x": ("x", x, {"units": "m"})}).to_netcdf(path)
    grid = read_grid(path)
    ones = np.ones(grid.shape, np.float32)
    scores = xr.Dataset({"elevation": grid, "score": (("y", "x"), ones), "relief_m": (("y", "x"), 1000 * ones)},
                        attrs={"seamountae_kind": "score", "patch_km": 12.0, "patch_px": 16, "geographic": 0, "crs": ""})
    only_our_error(lambda: detect(scores, min_height_m=100.0))


@pytest.mark.parametrize("text", ["lon,lat,LAT\n", "lon,lat,LAT\n1,2,3\n"])
def test_csv_with_column_names_repeated_in_another_case(folder, text):
    path = folder / "repeated.csv"
    path.write_text(text)
    only_our_error(lambda: read_catalogue(path))


def test_detect_on_a_one_cell_score_map():
    one = np.ones((1, 1), np.float32)
    scores = xr.Dataset({"elevation": (("y", "x"), -one), "error": (("y", "x"), 0 * one), "score": (("y", "x"), one),
                         "relief_m": (("y", "x"), 200 * one)}, coords={"y": [0.0], "x": [0.0]},
                        attrs={"seamountae_kind": "score", "patch_km": 12.0, "patch_px": 16, "geographic": 1, "crs": ""})
    with pytest.raises(SeamountaeError, match="fewer than 2 cells"):
        detect(scores, min_height_m=0.0)
