"""The command line: the whole chain on a small synthetic grid, help, version, overwrite, outputs' formats."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

import click
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import seamountae
from conftest import (GRID_SHAPE, N_SEAMOUNTS, PATCH_PX, TILE_OPTIONS, TRAIN_OPTIONS, file_digest, ok,
                      run_cli)
from seamountae.catalogue import read_catalogue
from seamountae.grid import read_grid
from seamountae.synth import synthesize
from seamountae.model import read_model

COMMANDS = ["synth", "tile", "train", "score", "detect", "export", "evaluate", "config"]
PROPERTIES = ["id", "lon", "lat", "summit_depth_m", "height_m", "basal_radius_km", "area_km2", "score", "centre_lon",
              "centre_lat", "breaks_surface"]


def test_whole_chain_on_a_synthetic_grid(tmp_path):
    """synth → tile → train → score → detect → export → evaluate, each exiting 0 with its artifact."""
    d = tmp_path
    rows, cols = GRID_SHAPE
    args = ["--seed", 3, "--scenario", "fabric", "--n-seamounts", N_SEAMOUNTS, "--size", rows, cols]
    result = ok(run_cli(["synth", "-o", d / "syn", *args]))
    assert f"{N_SEAMOUNTS} seamounts" in result.stderr
    grid = read_grid(d / "syn" / "grid.nc")
    expected = synthesize(seed=3, scenario="fabric", n_seamounts=N_SEAMOUNTS, shape=GRID_SHAPE)[0]
    np.testing.assert_array_equal(grid.values, expected.values)  # the command writes what the library makes
    assert len(read_catalogue(d / "syn" / "truth.csv")) == N_SEAMOUNTS

    ok(run_cli(["tile", d / "syn" / "grid.nc", "--catalogue", d / "syn" / "truth.csv", *TILE_OPTIONS, "-o", d / "p.nc"]))
    with xr.open_dataset(d / "p.nc") as patches:
        assert patches.attrs["seamountae_kind"] == "patches" and patches.attrs["n_seamounts"] == N_SEAMOUNTS
        assert patches["patch"].shape[1:] == (PATCH_PX, PATCH_PX)

    result = ok(run_cli(["train", d / "p.nc", *TRAIN_OPTIONS, "-o", d / "m.pt"]))
    assert "threshold auto" in result.stderr
    model, meta = read_model(d / "m.pt")
    assert meta["calibration"]["n_seamounts"] >= 1 and meta["calibration"]["n_background"] >= 1

    ok(run_cli(["score", d / "syn" / "grid.nc", "--model", d / "m.pt", "--device", "cpu", "-o", d / "s.nc"]))
    with xr.open_dataset(d / "s.nc") as s:
        assert s.attrs["seamountae_kind"] == "score"
        assert {"elevation", "error", "score", "relief_m"} <= set(s.data_vars)
        np.testing.assert_array_equal(s["lat"].values, grid.y.values)  # on the grid's own cells
        np.testing.assert_array_equal(s["lon"].values, grid.x.values)
        score = s["score"].values
        assert np.isfinite(score[30:-30, 30:-30]).all()  # every interior seafloor cell is scored
        finite = score[np.isfinite(score)]
        assert ((finite > 0) & (finite <= 1)).all()

    result = ok(run_cli(["detect", d / "s.nc", "-o", d / "det.nc"]))
    assert "seamounts" in result.stderr
    ok(run_cli(["export", d / "det.nc", "-o", d / "found.geojson"]))
    ok(run_cli(["export", d / "det.nc", "-o", d / "found.csv"]))
    assert len(json.loads((d / "found.geojson").read_text())["features"]) == len(read_catalogue(d / "found.csv"))

    result = ok(run_cli(["evaluate", d / "found.geojson", d / "syn" / "truth.csv", "--min-height", "1000", "--json"]))
    report = json.loads(result.stdout)
    # Trained and scored on the same tiny grid of rough fabric: the tall planted seamounts are found,
    # and no more abyssal hills than seamounts.
    assert report["recall"] >= 0.75, report
    assert report["precision"] >= 0.5, report


def test_help_of_every_command_has_an_example():
    top = ok(run_cli(["--help"]))
    for command in COMMANDS:
        assert command in top.stdout
        result = ok(run_cli([command, "--help"]))
        assert "Example" in result.stdout, command
        assert f"seamountae {command}" in result.stdout.split("Example")[1], command


def test_version():
    result = ok(run_cli(["--version"]))
    assert result.stdout.strip() == f"seamountae, version {seamountae.__version__}"


def test_real_process_fails_in_one_line(tmp_path):
    """`python -m seamountae` in its own process: an error is one line on stderr and exit status 1."""
    failed = subprocess.run([sys.executable, "-m", "seamountae", "detect", str(tmp_path / "absent.nc"), "-o",
                             str(tmp_path / "det.nc")], capture_output=True, text=True)
    assert failed.returncode == 1
    assert failed.stderr.startswith("seamountae: error:") and failed.stderr.count("\n") == 1, failed.stderr
    assert not (tmp_path / "det.nc").exists()


# ---------------------------------------------------------------------------------------- overwrite


@pytest.fixture
def command_lines(tmp_path, grid_file, catalogue_file, patches_file, model_file, score_file, detections_file):
    """Each command that writes a file, as (arguments, output)."""
    out = tmp_path / "out"
    out.mkdir()
    return {
        "tile": (["tile", grid_file, "--catalogue", catalogue_file, *TILE_OPTIONS], out / "patches.nc"),
        "train": (["train", patches_file, *TRAIN_OPTIONS, "--epochs", "1"], out / "model.pt"),
        "score": (["score", grid_file, "--model", model_file, "--device", "cpu", "--stride-px", "4"], out / "score.nc"),
        "detect": (["detect", score_file], out / "detections.nc"),
        "export": (["export", detections_file], out / "seamounts.geojson"),
    }


@pytest.mark.parametrize("command", ["tile", "train", "score", "detect", "export"])
def test_existing_output_is_kept_without_overwrite_and_replaced_with_it(command, command_lines):
    args, output = command_lines[command]
    output.write_text("precious")
    refused = run_cli([*args, "-o", output])
    assert refused.exit_code == 1
    assert refused.stderr.startswith("seamountae: error:") and "--overwrite" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert output.read_text() == "precious"
    ok(run_cli([*args, "-o", output, "--overwrite"]))
    assert output.read_bytes() != b"precious"
    assert not list(output.parent.glob("*.part"))


def test_synth_refuses_to_replace_its_files_without_overwrite(tmp_path):
    folder = tmp_path / "syn"
    folder.mkdir()
    (folder / "truth.csv").write_text("precious")
    refused = run_cli(["synth", "-o", folder, "--size", "32", "32"])
    assert refused.exit_code == 1 and "--overwrite" in refused.stderr
    assert (folder / "truth.csv").read_text() == "precious" and not (folder / "grid.nc").exists()
    ok(run_cli(["synth", "-o", folder, "--size", "32", "32", "--overwrite"]))
    assert (folder / "grid.nc").exists() and (folder / "truth.csv").read_text() != "precious"


# ------------------------------------------------------------------------------------------ outputs


@pytest.fixture(scope="module")
def geojson_text(tmp_path_factory, detections_file):
    path = tmp_path_factory.mktemp("export") / "seamounts.geojson"
    ok(run_cli(["export", detections_file, "-o", path]))
    return path.read_text()


def test_geojson_is_rfc7946(geojson_text, synthetic):
    doc = json.loads(geojson_text)
    grid, _ = synthetic
    assert doc["type"] == "FeatureCollection"
    assert "crs" not in doc  # RFC 7946 removed it: coordinates are WGS84 lon/lat
    assert len(doc["features"]) >= 3
    for feature in doc["features"]:
        assert feature["type"] == "Feature"
        assert feature["geometry"]["type"] == "Point"
        lon, lat = feature["geometry"]["coordinates"]  # [lon, lat], no third value
        assert -180 <= lon <= 180 and -90 <= lat <= 90
        assert float(grid.x[0]) <= lon <= float(grid.x[-1]) and float(grid.y[0]) <= lat <= float(grid.y[-1])
        props = feature["properties"]
        assert set(PROPERTIES) <= set(props)
        assert (props["lon"], props["lat"]) == (lon, lat)
        assert feature["id"] == props["id"]
        assert props["height_m"] > 0 and props["basal_radius_km"] > 0 and props["area_km2"] > 0
        assert props["summit_depth_m"] > 0  # depth: positive down
        assert 0 < props["score"] <= 1
    assert sorted(f["properties"]["id"] for f in doc["features"]) == list(range(1, len(doc["features"]) + 1))


def test_geojson_coordinates_have_at_most_7_decimals(geojson_text):
    doc = json.loads(geojson_text, parse_float=Decimal)
    for feature in doc["features"]:
        for value in feature["geometry"]["coordinates"]:
            assert -value.as_tuple().exponent <= 7, value


def test_geojson_records_provenance(geojson_text, detections_file):
    record = json.loads(geojson_text)["seamountae"]
    assert record["seamountae_version"] == seamountae.__version__
    assert record["inputs"]["detections"]["sha256"] == file_digest(detections_file)


def test_csv_export_has_the_same_seamounts(tmp_path, geojson_text, detections_file):
    ok(run_cli(["export", detections_file, "-o", tmp_path / "cat.txt", "--format", "csv"]))
    text = (tmp_path / "cat.txt").read_text()
    assert text.startswith("# seamountae {")  # provenance comment, then a plain CSV table
    table = pd.read_csv(tmp_path / "cat.txt", comment="#")
    assert list(table.columns[: len(PROPERTIES)]) == PROPERTIES
    features = json.loads(geojson_text)["features"]
    assert len(table) == len(features)
    for (_, row), feature in zip(table.sort_values("id").iterrows(), sorted(features, key=lambda f: f["id"])):
        assert [row["lon"], row["lat"]] == pytest.approx(feature["geometry"]["coordinates"], abs=1e-7)
        assert row["height_m"] == pytest.approx(feature["properties"]["height_m"], abs=1e-3)


def test_export_format_follows_the_file_name(tmp_path, detections_file):
    ok(run_cli(["export", detections_file, "-o", tmp_path / "a.csv"]))
    ok(run_cli(["export", detections_file, "-o", tmp_path / "a.json"]))
    assert (tmp_path / "a.csv").read_text().startswith("# seamountae")
    assert json.loads((tmp_path / "a.json").read_text())["type"] == "FeatureCollection"
    record = json.loads((tmp_path / "a.csv").read_text().splitlines()[0][len("# seamountae "):])
    assert record["parameters"]["format"] == "csv"


def test_kml_export_is_kml_2_2_placemarks_in_lon_lat_order(tmp_path, geojson_text, detections_file):
    from xml.etree import ElementTree as ET

    from seamountae.outputs import read_provenance

    ok(run_cli(["export", detections_file, "-o", tmp_path / "seamounts.kml"]))
    root = ET.parse(tmp_path / "seamounts.kml").getroot()
    kml = "{http://www.opengis.net/kml/2.2}"
    assert root.tag == f"{kml}kml" and [child.tag for child in root] == [f"{kml}Document"]
    placemarks = root.findall(f"{kml}Document/{kml}Placemark")
    features = sorted(json.loads(geojson_text)["features"], key=lambda f: f["id"])
    assert len(placemarks) == len(features) > 0
    for placemark, feature in zip(placemarks, features):
        # KML's element order within a Placemark: name, description, ExtendedData, geometry.
        assert [child.tag[len(kml):] for child in placemark] == ["name", "description", "ExtendedData", "Point"]
        assert placemark.findtext(f"{kml}name") == f"seamount {feature['id']}"
        lon, lat = (float(v) for v in placemark.findtext(f"{kml}Point/{kml}coordinates").split(","))
        assert [lon, lat] == pytest.approx(feature["geometry"]["coordinates"], abs=1e-7)
        data = {d.get("name"): d.findtext(f"{kml}value") for d in placemark.iter(f"{kml}Data")}
        assert float(data["height_m"]) == pytest.approx(feature["properties"]["height_m"], abs=1e-3)
        assert float(data["score"]) == pytest.approx(feature["properties"]["score"], rel=1e-5)
        description = ET.fromstring(placemark.findtext(f"{kml}description"))  # an HTML table, escaped in the KML
        assert {th.text for th in description.iter("th")} >= {"height_m", "score"}
    assert read_provenance(tmp_path / "seamounts.kml")["parameters"]["format"] == "kml"


def test_an_unknown_output_suffix_is_refused_listing_the_formats(tmp_path, detections_file):
    result = run_cli(["export", detections_file, "-o", tmp_path / "seamounts.shp"])
    assert result.exit_code != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "seamounts.shp" in message
    assert all(name in message for name in (".geojson", ".csv", ".txt", ".kml", "--format"))
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file
    ok(run_cli(["export", detections_file, "-o", tmp_path / "seamounts.shp", "--format", "geojson"]))
    assert json.loads((tmp_path / "seamounts.shp").read_text())["type"] == "FeatureCollection"


def test_a_grid_without_crs_is_lon_lat_with_a_warning_or_refused(tmp_path, synthetic, model_file):
    import rasterio
    from rasterio.transform import Affine

    grid = synthetic[0]
    cell = float(grid.x[1] - grid.x[0])

    def bare_tif(name, x0, y0, step):  # a transform, no CRS
        with rasterio.open(tmp_path / name, "w", driver="GTiff", width=grid.sizes["x"], height=grid.sizes["y"],
                           count=1, dtype="float32", transform=Affine(step, 0, x0, 0, -step, y0)) as dst:
            dst.write(grid.values[::-1].astype(np.float32), 1)
        return tmp_path / name

    degrees = bare_tif("degrees.tif", float(grid.x[0]) - cell / 2, float(grid.y[-1]) + cell / 2, cell)
    score = ["score", "--model", model_file, "--device", "cpu", "--stride-px", "4"]
    warned = ok(run_cli([*score, degrees, "-o", tmp_path / "a.nc"]))
    lines = [line for line in warned.stderr.splitlines() if "records no CRS" in line]
    assert len(lines) == 1 and "lon/lat" in lines[0] and "--crs EPSG:" in lines[0]
    confirmed = ok(run_cli([*score, degrees, "--crs", "EPSG:4326", "-o", tmp_path / "b.nc"]))
    assert "records no CRS" not in confirmed.stderr
    with xr.open_dataset(tmp_path / "a.nc") as a, xr.open_dataset(tmp_path / "b.nc") as b:
        assert int(a.attrs["geographic"]) == 1
        np.testing.assert_array_equal(a["error"].values, b["error"].values)
    # The same cells in metres: unknown units are refused; --crs names them.
    metres = bare_tif("utm.tif", 400000.0, 4300000.0, 1852.0)
    refused = run_cli([*score, metres, "-o", tmp_path / "c.nc"])
    assert refused.exit_code != 0 and "--crs EPSG:" in refused.stderr and len(refused.stderr.splitlines()) == 1
    assert not (tmp_path / "c.nc").exists()
    ok(run_cli([*score, metres, "--crs", "EPSG:32626", "-o", tmp_path / "c.nc"]))
    with xr.open_dataset(tmp_path / "c.nc") as c:
        assert int(c.attrs["geographic"]) == 0 and "32626" in c["crs"].attrs["crs_wkt"]


def test_score_warns_on_a_grid_unlike_the_training_bathymetry(tmp_path, synthetic, grid_file, model_file):
    """White noise and heights in km are said in one line each; the training grid and old models stay quiet."""
    import torch

    from seamountae.grid import write_grid

    grid = synthetic[0]
    noise = grid.copy(data=np.random.default_rng(0).normal(-4000.0, 300.0, grid.shape).astype(np.float32))
    write_grid(noise, tmp_path / "noise.nc")
    write_grid(grid.copy(data=grid.values / 1000.0), tmp_path / "km.nc")
    score = ["score", "--model", model_file, "--device", "cpu", "--stride-px", "4"]
    for name, words in (("noise", "hardly correlated"), ("km", "check the heights' units")):
        result = ok(run_cli([*score, tmp_path / f"{name}.nc", "-o", tmp_path / f"{name}_score.nc"]))
        lines = [line for line in result.stderr.splitlines() if "unlike the terrain" in line]
        assert len(lines) == 1 and words in lines[0] and f"{name}.nc" in lines[0], result.stderr
    quiet = ok(run_cli([*score, grid_file, "-o", tmp_path / "grid_score.nc"]))
    assert "unlike the terrain" not in quiet.stderr
    old = torch.load(model_file, weights_only=True)
    del old["terrain"]  # a model file from before the record
    torch.save(old, tmp_path / "old.pt")
    result = ok(run_cli(["score", tmp_path / "noise.nc", "--model", tmp_path / "old.pt", "--device", "cpu",
                         "--stride-px", "4", "-o", tmp_path / "old_score.nc"]))
    assert "unlike the terrain" not in result.stderr


def test_score_file_records_provenance(score_file, grid_file, model_file):
    with xr.open_dataset(score_file) as ds:
        assert ds.attrs["seamountae_version"] == seamountae.__version__
        inputs = json.loads(ds.attrs["seamountae_inputs"])
        parameters = json.loads(ds.attrs["seamountae_parameters"])
    assert inputs["grid"]["sha256"] == file_digest(grid_file)
    assert inputs["model"]["sha256"] == file_digest(model_file)
    assert parameters["stride_px"] == 2


def test_score_file_is_georeferenced_cf(score_file):
    with xr.open_dataset(score_file) as ds:
        assert ds.attrs["Conventions"].startswith("CF")
        assert ds["lat"].attrs["units"] == "degrees_north" and ds["lon"].attrs["units"] == "degrees_east"


def test_score_stride_option_is_used(tmp_path, grid_file, model_file, score_file):
    ok(run_cli(["score", grid_file, "--model", model_file, "--device", "cpu", "--stride", "4", "-o", tmp_path / "s4.nc"]))
    with xr.open_dataset(tmp_path / "s4.nc") as coarse, xr.open_dataset(score_file) as fine:
        assert coarse.attrs["stride_px"] == 4 and fine.attrs["stride_px"] == 2
        assert coarse["error"].shape == fine["error"].shape  # same cells, coarser lattice of patch centres
        assert not np.allclose(coarse["error"].values, fine["error"].values, equal_nan=True)


# ------------------------------------------------------------------------------------------ logging


def test_warnings_go_to_stderr_and_quiet_silences_them(tmp_path, grid_file):
    catalogue = tmp_path / "cat.csv"
    catalogue.write_text("lon,lat\n-28.778092,31.536714\n100.0,10.0\n")  # one inside, one far away
    args = ["tile", grid_file, "--catalogue", catalogue, *TILE_OPTIONS]
    loud = ok(run_cli([*args, "-o", tmp_path / "a.nc"]))
    assert "1 of 2 seamounts lie outside the grid" in loud.stderr
    again = ok(run_cli([*args, "-o", tmp_path / "b.nc"]))  # a second command in the same process logs too
    assert "1 of 2 seamounts lie outside the grid" in again.stderr
    quiet = ok(run_cli([*args, "-q", "-o", tmp_path / "c.nc"]))
    assert "outside" not in quiet.stderr
    assert loud.stdout == "" and quiet.stdout == ""  # stdout stays clean for data


def test_errors_carry_a_traceback_only_with_vv(tmp_path):
    plain = run_cli(["detect", tmp_path / "absent.nc", "-o", tmp_path / "d.nc"])
    verbose = run_cli(["detect", tmp_path / "absent.nc", "-o", tmp_path / "d.nc", "-vv"])
    assert plain.exit_code == verbose.exit_code == 1
    assert "Traceback" not in plain.stderr
    assert "Traceback" in verbose.stderr and "seamountae: error:" in verbose.stderr


@pytest.mark.parametrize("command, stages", [("tile", ("tile", "grid")), ("train", ("train",)), ("score", ("score", "grid")),
                                             ("detect", ("detect",)), ("export", ("export",)), ("evaluate", ("evaluate",)),
                                             ("find", ("score", "detect", "export", "grid"))])
def test_every_parameter_is_an_option_whose_help_states_its_default(command, stages):
    from seamountae.cli import cli
    from seamountae.config import PARAMETERS

    options = {o.name: o for o in cli.commands[command].params if isinstance(o, click.Option)}
    for stage in stages:
        for name, (default, comment) in PARAMETERS[stage].items():
            if (stage, name) == ("grid", "depth_positive"):
                continue  # --depth-positive/--elevation-positive, from the file's attributes by default
            assert name in options, f"{command}: no option for [{stage}] {name}"
            shown = " ".join(map(str, default)) if isinstance(default, list) and options[name].nargs == 2 else None
            assert comment[1:] in options[name].help
            assert f"[default: {shown}]" in options[name].help if shown else "[default: " in options[name].help


def test_the_old_min_height_spelling_still_works_but_is_not_shown(tmp_path):
    help_text = ok(run_cli(["evaluate", "--help"])).stdout
    assert "--min-height-m" in help_text and "--min-height " not in help_text and "--min-height," not in help_text


def test_tile_joins_catalogues_and_the_card_counts_each_training_grid(tmp_path):
    """Two catalogues listing some of the same seamounts (2 km apart, as censuses do) train on each
    seamount once; the model card names every training grid with its seamounts."""
    d = tmp_path
    ok(run_cli(["synth", "-o", d / "syn", "--seed", 3, "--scenario", "fabric", "--n-seamounts", N_SEAMOUNTS,
                "--size", *GRID_SHAPE]))
    truth, half = read_catalogue(d / "syn" / "truth.csv"), N_SEAMOUNTS // 2
    truth.iloc[: half + 2].to_csv(d / "a.csv", index=False)
    truth.iloc[half:].assign(lon=truth["lon"].iloc[half:] + 0.02).to_csv(d / "b.csv", index=False)  # two in both
    grid = d / "syn" / "grid.nc"
    ok(run_cli(["tile", grid, "--catalogue", d / "a.csv", "--catalogue", d / "b.csv", *TILE_OPTIONS, "-o", d / "ab.nc"]))
    ok(run_cli(["tile", grid, "--catalogue", d / "a.csv", *TILE_OPTIONS, "-o", d / "a.nc"]))
    with xr.open_dataset(d / "ab.nc") as joined, xr.open_dataset(d / "a.nc") as first:
        assert joined.attrs["n_seamounts"] == N_SEAMOUNTS and first.attrs["n_seamounts"] == half + 2
        assert set(json.loads(joined.attrs["seamountae_inputs"])) == {"grid", "catalogue", "catalogue_2"}
    ok(run_cli(["train", d / "ab.nc", d / "a.nc", *TRAIN_OPTIONS, "-o", d / "m.pt"]))
    card = ok(run_cli(["models", d / "m.pt"])).stdout
    assert f"    {grid}: {N_SEAMOUNTS} seamounts, " in card and f"    {grid}: {half + 2} seamounts, " in card
