import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seamountae.catalogue import (
    points_inside,
    read_catalogue,
    wrap_lon,
    write_catalogue,
    write_csv,
    write_geojson,
)
from seamountae.errors import SeamountaeError
from seamountae.geometry import haversine_km

AZORES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "azores" / "azores_catalogue.csv"


def write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def assert_catalogue(table, lon, lat):
    assert list(table.columns[:2]) == ["lon", "lat"]
    assert table["lon"].dtype == np.float64 and table["lat"].dtype == np.float64
    np.testing.assert_allclose(table["lon"], lon)
    np.testing.assert_allclose(table["lat"], lat)


# ------------------------------------------------------------------------------------------ readers


def test_csv_lon_lat_other_columns_kept(tmp_path):
    path = write(tmp_path, "c.csv", "name,lon,lat,Height_M\nA,-25.5,37.2,1200\nB,-26,38,800\n")
    table = read_catalogue(path)
    assert_catalogue(table, [-25.5, -26.0], [37.2, 38.0])
    assert list(table.columns) == ["lon", "lat", "name", "height_m"]
    assert table["height_m"].tolist() == [1200, 800]
    assert table["name"].tolist() == ["A", "B"]


def test_csv_mixed_case_names_with_spaces(tmp_path):
    path = write(tmp_path, "c.csv", " Latitude , Longitude ,depth\n37.2, -25.5 ,-3000\n38, -26,-2000\n")
    assert_catalogue(read_catalogue(path), [-25.5, -26.0], [37.2, 38.0])


def test_csv_x_y_projected(tmp_path):
    path = write(tmp_path, "c.csv", "X,Y\n500000,4200000\n510000,4100000\n")
    assert_catalogue(read_catalogue(path), [500000, 510000], [4200000, 4100000])


@pytest.mark.parametrize("sep", [";", "\t"])
def test_csv_semicolon_and_tab(tmp_path, sep):
    path = write(tmp_path, "c.csv", f"lon{sep}lat{sep}name\n-25.5{sep}37.2{sep}A, b\n")
    table = read_catalogue(path)
    assert_catalogue(table, [-25.5], [37.2])
    assert table["name"].tolist() == ["A, b"]


def test_csv_comment_lines_skipped(tmp_path):
    path = write(tmp_path, "c.csv", "# made by hand\n#another\nlon,lat\n# inline comment line\n1,2\n\n3,4\n")
    assert_catalogue(read_catalogue(path), [1, 3], [2, 4])


@pytest.mark.skipif(not AZORES.exists(), reason="shared Azores data not present")
def test_real_azores_catalogue():
    table = read_catalogue(AZORES)
    assert len(table) == 242
    assert list(table.columns) == [
        "lon", "lat", "height_m", "radius_km", "base_depth_m", "name", "charted", "grid_relief_m"
    ]
    assert table["lon"].between(-33, -23).all() and table["lat"].between(35.5, 43).all()


KIM_WESSEL_HEAD = """Global Seamount Database from Kim, S.-S., and P. Wessel (2011), Geophys. J. Int., in revision.
This file contains 24,646 potential seamounts from the entire ocean basins.
The columns are:
Col 1: Longitude (-180/+180). Center of each seamount (in degrees)
Col 2: Latitude (-90/+90). Center of each seamount (in degrees)
Col 3: Estimated azimuth of the basal ellipse (in degree)
Col 4: Estimated major axis of the basal ellipse of each seamount (in km)
Col 5: Estimated minor axis of the basal ellipse of each seamount (in km)
Col 6: Seamount height obtained from the prediced bathymetry TOPO V12 (in m)
Col 7: Maximum amplitude of the Free-Air Gravity Anomaly (in mGal)
Col 8: Maximum amplitude of the Vertical Gravity Gradient Anomaly (in Eotvos)
Col 9: Regional depth of each seamount (in m)
Col 10: Age of underlying seafloor from the AGE 3.2 grid (in Myr)
Col 11: ID for each seamount (plate_###)
For explanation of modeling and notations, please see our GJI paper

Longitude\tLatitude\tAzimuth\tMajor\tMinor\tHeight\tFAA\tVGG\tDepth\tCrustAge\tID
00.21625\t-06.43136\t65.3\t34.1\t13.0\t2870.6\t176.2\t210.5\t-3330.0\t77.0\tKW-00001
-00.46251\t-06.80837\t-78.1\t31.9\t18.2\t2800.2\t120.7\t96.9\t-3599.8\t74.0\tKW-00002
"""
KIM_WESSEL = Path(__file__).resolve().parents[2] / "shared" / "data" / "catalogues" / "KWSMTSv01.txt"


def test_kim_wessel_census_as_distributed(tmp_path):
    """16 lines of free text, then a tab-separated header: read as it is, with height and basal radius."""
    path = tmp_path / "KWSMTSv01.txt"
    path.write_text(KIM_WESSEL_HEAD)
    table = read_catalogue(path)
    assert list(table.columns[:2]) == ["lon", "lat"] and len(table) == 2
    assert table["lon"].tolist() == [0.21625, -0.46251] and table["id"].tolist() == ["KW-00001", "KW-00002"]
    assert table["height_m"].tolist() == [2870.6, 2800.2]
    assert table["radius_km"][0] == pytest.approx(0.5 * (34.1 * 13.0) ** 0.5)


@pytest.mark.skipif(not KIM_WESSEL.exists(), reason="shared catalogues not present")
def test_real_kim_wessel_census():
    table = read_catalogue(KIM_WESSEL)
    assert len(table) > 24_000 and table["lat"].between(-90, 90).all() and (table["radius_km"] > 0).all()


def test_yesson_style_csv_with_x_y_and_height(tmp_path):
    path = tmp_path / "seamounts.csv"
    path.write_text("PeakID,Depth,Height,X,Y,Type\n272872,-2,3615,-138.0875,57.9375,1\n")
    table = read_catalogue(path)
    assert (table["lon"][0], table["lat"][0], table["height_m"][0]) == (-138.0875, 57.9375, 3615)


def test_geojson_points_with_properties(tmp_path):
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": 7, "geometry": {"type": "Point", "coordinates": [-25.5, 37.2]},
             "properties": {"Name": "A", "height_m": 1500}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [-26.0, 38.0, -3000]},
             "properties": {"Name": "B", "height_m": None}},
        ],
    }
    table = read_catalogue(write(tmp_path, "c.geojson", json.dumps(doc)))
    assert_catalogue(table, [-25.5, -26.0], [37.2, 38.0])
    assert table["name"].tolist() == ["A", "B"]
    assert table["height_m"].iloc[0] == 1500 and np.isnan(table["height_m"].iloc[1])
    assert table["id"].iloc[0] == 7


def test_geojson_linestring_skipped_with_warning(tmp_path, caplog):
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, "properties": {}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1.5, 2.5]}, "properties": {}},
            {"type": "Feature", "geometry": {"type": "MultiPoint", "coordinates": [[3, 4], [5, 6]]},
             "properties": {"k": 1}},
        ],
    }
    # No .geojson extension: detected by content.
    with caplog.at_level(logging.WARNING, logger="seamountae"):
        table = read_catalogue(write(tmp_path, "c.txt", json.dumps(doc)))
    assert_catalogue(table, [1.5, 3, 5], [2.5, 4, 6])
    assert "skipped 1 non-Point" in caplog.text


def test_geojson_bare_feature(tmp_path):
    doc = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [10, 20]}, "properties": {"a": "x"}}
    table = read_catalogue(write(tmp_path, "f.json", json.dumps(doc)))
    assert_catalogue(table, [10], [20])
    assert table["a"].tolist() == ["x"]


def test_gmt_text_with_comments_segments_and_extra_columns(tmp_path):
    text = (
        "# KWSMTS style\n"
        "# lon lat azimuth major minor height name\n"
        "> segment 1\n"
        "  189.5   -17.25   45.0  12.1  8.0  1200  SMT-1\n"
        "\t-170.25\t-16.5\t30\t10\t7\t900\tSMT-2\n"
        ">\n"
        "10 20 0 1 1 500 x\n"
    )
    table = read_catalogue(write(tmp_path, "kw.txt", text))
    assert_catalogue(table, [189.5, -170.25, 10], [-17.25, -16.5, 20])  # 0..360 left as given
    assert list(table.columns) == ["lon", "lat", "col3", "col4", "col5", "col6", "col7"]
    assert table["col6"].tolist() == [1200, 900, 500]
    assert table["col6"].dtype.kind in "if"
    assert table["col7"].tolist() == ["SMT-1", "SMT-2", "x"]


def test_wrap_lon():
    np.testing.assert_allclose(wrap_lon(np.array([0, 190, 359.5, -190, 180, -180, 540])),
                               [0, -170, -0.5, 170, 180, -180, 180])
    assert wrap_lon(350.0) == -10.0


def test_haversine_one_degree_on_equator():
    assert haversine_km(0, 0, 1, 0) == pytest.approx(6371.0 * np.pi / 180)
    assert haversine_km(179.99, 0, -179.99, 0) == pytest.approx(6371.0 * np.pi / 180 * 0.02)


# ------------------------------------------------------------------------------------------- errors


def error(path):
    with pytest.raises(SeamountaeError) as info:
        read_catalogue(path)
    message = str(info.value)
    assert path.name in message and "\n" not in message
    return message


def test_error_missing_file(tmp_path):
    assert "not found" in error(tmp_path / "nope.csv")


@pytest.mark.parametrize("text", ["", "  \n\n", "# only a comment\n"])
def test_error_empty(tmp_path, text):
    assert "empty" in error(write(tmp_path, "e.csv", text))


def test_error_no_lon_lat_columns(tmp_path):
    message = error(write(tmp_path, "c.csv", "easting,northing\n1,2\n"))
    assert "no longitude/latitude columns" in message and "lon, longitude, x" in message


def test_error_non_numeric_coordinate_names_row(tmp_path):
    message = error(write(tmp_path, "c.csv", "# comment\nlon,lat\n1,2\n3,abc\n"))
    assert "row 2" in message and "line 4" in message


def test_error_nan_coordinate(tmp_path):
    assert "row 1" in error(write(tmp_path, "c.csv", "lon,lat\n1,\n"))


def test_error_non_numeric_in_gmt_text(tmp_path):
    assert "line 3" in error(write(tmp_path, "g.txt", "1 2\n3 4\n5 x\n"))


def test_error_latitude_out_of_range(tmp_path):
    assert "latitude 95" in error(write(tmp_path, "c.csv", "lon,lat\n10,95\n"))
    # Swapped columns in GMT text are caught too, since the numbers look like degrees.
    assert "latitude" in error(write(tmp_path, "g.txt", "10 20\n30 -120\n"))


def test_projected_xy_not_checked_as_latitude(tmp_path):
    table = read_catalogue(write(tmp_path, "c.csv", "x,y\n500000,-4200000\n"))
    assert table["lat"].iloc[0] == -4200000


def test_error_invalid_json(tmp_path):
    assert "invalid JSON" in error(write(tmp_path, "c.geojson", '{"type": "FeatureCollection", "features": [}'))


def test_error_geojson_without_points(tmp_path):
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 1], [0, 0]]]},
         "properties": {}}]}
    assert "no Point features" in error(write(tmp_path, "c.geojson", json.dumps(doc)))


def test_error_binary_file(tmp_path):
    assert "binary" in error(write(tmp_path, "grid.nc", b"CDF\x01\x00\x00\x00\x00\xff\xfe", mode="wb"))


# ------------------------------------------------------------------------------------ points_inside


def test_points_inside_0_360_catalogue_in_180_box():
    cat = pd.DataFrame({"lon": [335.0, 340.0, 10.0, 335.0], "lat": [38.0, 38.0, 38.0, 50.0], "k": [1, 2, 3, 4]})
    inside, skipped = points_inside(cat, -33, -23, 35.5, 43)
    assert skipped == 3
    assert inside["lon"].tolist() == [-25.0] and inside["k"].tolist() == [1]


def test_points_inside_180_catalogue_in_0_360_box_and_dateline():
    cat = pd.DataFrame({"lon": [-175.0, 175.0, 170.0, 0.0], "lat": [0.0, 0.0, 0.0, 0.0]})
    inside, skipped = points_inside(cat, 172, 190, -5, 5)
    assert sorted(inside["lon"]) == [175.0, 185.0] and skipped == 2  # in the grid's own longitudes
    whole, skipped = points_inside(cat, 0, 360, -90, 90)
    assert len(whole) == 4 and skipped == 0


def test_points_inside_projected_plain_compare():
    cat = pd.DataFrame({"lon": [500.0, 900.0], "lat": [10.0, 10.0]})
    inside, skipped = points_inside(cat, 400, 600, 0, 20, geographic=False)
    assert inside["lon"].tolist() == [500.0] and skipped == 1
    # A north-up grid hands over y from top to bottom.
    inside, skipped = points_inside(cat, 600, 400, 20, 0, geographic=False)
    assert inside["lon"].tolist() == [500.0] and skipped == 1


# ------------------------------------------------------------------------------------------ writers


def table():
    return pd.DataFrame({
        "lon": [335.123456789, -25.5], "lat": [37.987654321, 38.0],
        "id": [1, 2], "score": [0.91234567, np.nan], "height_m": [1234.56789, 900.0], "name": ["A", None],
    })


def test_write_geojson_valid(tmp_path):
    path = tmp_path / "out.geojson"
    write_geojson(table(), path, provenance={"seamountae_version": "0.1.0"})
    text = path.read_text()
    doc = json.loads(text)
    assert "NaN" not in text
    assert doc["type"] == "FeatureCollection" and "crs" not in doc
    assert doc["seamountae"] == {"seamountae_version": "0.1.0"}
    first, second = doc["features"]
    assert first["type"] == "Feature" and first["id"] == 1
    assert first["geometry"] == {"type": "Point", "coordinates": [-24.8765432, 37.9876543]}  # lon first, wrapped
    for feature in doc["features"]:
        for value in feature["geometry"]["coordinates"]:
            assert -180 <= value <= 180 and len(repr(value).split(".")[-1]) <= 7
        assert all(not isinstance(v, (dict, list)) for v in feature["properties"].values())  # flat
    props = first["properties"]
    assert props["id"] == 1 and isinstance(props["id"], int)
    assert props["height_m"] == 1234.568 and props["name"] == "A"
    assert second["properties"]["score"] is None and second["properties"]["name"] is None


def test_write_geojson_empty_table(tmp_path):
    path = tmp_path / "empty.geojson"
    write_geojson(pd.DataFrame({"lon": [], "lat": []}), path)
    assert json.loads(path.read_text()) == {"type": "FeatureCollection", "features": []}
    assert len(read_catalogue(path)) == 0


def test_geojson_round_trip(tmp_path):
    path = tmp_path / "out.geojson"
    write_catalogue(table(), path, provenance={"a": 1})
    back = read_catalogue(path)
    assert_catalogue(back, [-24.8765432, -25.5], [37.9876543, 38.0])
    assert back["id"].tolist() == [1, 2] and back["name"].iloc[0] == "A"


def test_csv_round_trip_with_provenance_comment(tmp_path):
    path = tmp_path / "out.csv"
    write_catalogue(table(), path, provenance={"command": "seamountae detect", "n": 2})
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith("# seamountae ")
    assert json.loads(first_line[len("# seamountae "):]) == {"command": "seamountae detect", "n": 2}
    back = read_catalogue(path)
    assert_catalogue(back, [335.1234568, -25.5], [37.9876543, 38.0])
    assert re.search(r"335\.1234568,", path.read_text())
    assert back["name"].iloc[0] == "A" and back["height_m"].iloc[0] == pytest.approx(1234.56789)


def test_csv_round_trip_empty(tmp_path):
    path = tmp_path / "out.csv"
    write_csv(pd.DataFrame({"lon": [], "lat": [], "score": []}), path, provenance={"a": 1})
    back = read_catalogue(path)
    assert len(back) == 0 and list(back.columns) == ["lon", "lat", "score"]


@pytest.mark.parametrize("name", ["out.csv", "out.geojson"])
def test_refuses_overwrite(tmp_path, name):
    path = tmp_path / name
    path.write_text("keep me")
    with pytest.raises(SeamountaeError, match="exists"):
        write_catalogue(table(), path)
    assert path.read_text() == "keep me"
    write_catalogue(table(), path, overwrite=True)
    assert len(read_catalogue(path)) == 2


def test_write_catalogue_format_choice(tmp_path):
    path = tmp_path / "out.dat"
    with pytest.raises(SeamountaeError, match="out.dat"):
        write_catalogue(table(), path)
    write_catalogue(table(), path, fmt="geojson")
    assert json.loads(path.read_text())["type"] == "FeatureCollection"
    write_catalogue(table(), tmp_path / "out.txt")  # GMT text by its name
    assert (tmp_path / "out.txt").read_text().splitlines()[0].startswith("# lon lat")


def test_union_keeps_a_seamount_listed_twice_once():
    """An entry within the distance of an earlier catalogue's is that seamount (across ±180° too);
    projected coordinates are metres."""
    from seamountae.catalogue import union

    first = pd.DataFrame({"lon": [10.0, 179.99], "lat": [5.0, 0.0], "name": ["A", "B"]})
    second = pd.DataFrame({"lon": [10.05, 10.2, -179.99], "lat": [5.0, 5.0, 0.0], "height_m": [900.0, 800.0, 700.0]})
    joined = union([first, second], 10.0)
    assert joined["name"].tolist()[:2] == ["A", "B"] and joined["lon"].tolist() == [10.0, 179.99, 10.2]
    assert joined["height_m"].iloc[2] == 800.0 and np.isnan(joined["height_m"].iloc[0])
    projected = union([pd.DataFrame({"lon": [0.0], "lat": [0.0]}), pd.DataFrame({"lon": [9_000.0, 11_000.0], "lat": [0.0, 0.0]})],
                      10.0, geographic=False)
    assert projected["lon"].tolist() == [0.0, 11_000.0]
    nothing = union([pd.DataFrame({"lon": [], "lat": []}), pd.DataFrame({"lon": [], "lat": []})], 10.0)
    assert nothing.empty and list(nothing.columns) == ["lon", "lat"]
