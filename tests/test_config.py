"""Configuration: one default per parameter, TOML files checked key by key, options over file over defaults."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from conftest import PATCH_KM, ok, run_cli
from seamountae import config
from seamountae.errors import SeamountaeError

DEFAULT_TOML = Path(__file__).resolve().parents[1] / "configs" / "default.toml"


def test_template_parses_and_equals_the_defaults():
    parsed = tomllib.loads(config.template())
    assert parsed == {stage: config.defaults(stage) for stage in config.PARAMETERS}


def test_template_comments_every_parameter():
    comments, section, previous = {}, None, ""
    for line in config.template().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif " = " in line and not line.startswith("#"):
            comments[(section, line.split(" = ")[0])] = previous
        previous = line
    assert comments == {(stage, name): f"# {comment}" for stage, params in config.PARAMETERS.items()
                        for name, (_, comment) in params.items()}


def test_cli_template_is_the_template():
    result = ok(run_cli(["config", "--template"]))
    assert tomllib.loads(result.stdout) == tomllib.loads(config.template())
    assert result.stdout.rstrip("\n") == config.template().rstrip("\n")


def test_configs_default_toml_is_the_cli_template():
    assert DEFAULT_TOML.read_text() == ok(run_cli(["config", "--template"])).stdout


def test_every_default_passes_its_own_check():
    for stage, params in config.PARAMETERS.items():
        for name, (value, _) in params.items():
            assert config.check(stage, name, value) is None, (stage, name)


def write(tmp_path, text, name="my.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_file_overrides_defaults_and_options_override_file(tmp_path):
    path = write(tmp_path, "[train]\nepochs = 7\nlearning_rate = 0.01\n")
    resolved = config.resolve("train", path, {"epochs": 3, "latent": None})
    assert resolved["epochs"] == 3  # option given
    assert resolved["learning_rate"] == 0.01  # from the file
    assert resolved["latent"] == config.defaults("train")["latent"]  # option not given, not in the file
    assert config.resolve("train", None, {}) == config.defaults("train")


def test_integer_for_a_float_parameter_becomes_float(tmp_path):
    resolved = config.resolve("tile", write(tmp_path, "[tile]\npatch_km = 24\n"), {})
    assert resolved["patch_km"] == 24.0 and isinstance(resolved["patch_km"], float)


def test_run_section_is_allowed(tmp_path):
    assert config.load(write(tmp_path, "[run]\nnote = 'anything'\n[score]\nstride_px = 4\n"))["score"]["stride_px"] == 4


@pytest.mark.parametrize("text, words", [
    ("[train]\nepoch = 3\n", "unknown key(s) epoch in [train]"),
    ("[training]\nepochs = 3\n", "unknown section [training]"),
    ("[train\nepochs = 3\n", "not valid TOML"),
    ("[train]\nepochs = 'many'\n", "epochs = \"many\": must be a whole number"),
    ("[train]\nepochs = 0\n", "epochs = 0: must be 1 or more"),
    ("[tile]\npatch_px = 12\n", "multiple of 8"),
    ("[tile]\npatch_km = -5.0\n", "must be greater than 0"),
    ("[grid]\nmask_land = 'yes'\n", "must be true or false"),
    ("[export]\nformat = 'shp'\n", "must be auto, geojson, csv, gmt or kml"),
    ("[score]\ndevice = 'gpu'\n", "auto, cpu, cuda or cuda:N"),
])
def test_bad_config_files_are_one_line_errors(tmp_path, text, words):
    path = write(tmp_path, text)
    with pytest.raises(SeamountaeError) as info:
        config.load(path)
    message = str(info.value)
    assert words in message and str(path) in message and "\n" not in message


def test_missing_config_file(tmp_path):
    with pytest.raises(SeamountaeError, match="no such config file"):
        config.resolve("tile", tmp_path / "absent.toml", {})


def test_bad_option_value_names_the_option():
    with pytest.raises(SeamountaeError, match=r"^--stride-px 0: must be 1 or more$"):
        config.resolve("score", None, {"stride_px": 0})


def test_cli_unknown_key_is_a_one_line_error(tmp_path, grid_file, catalogue_file):
    path = write(tmp_path, "[tile]\npatch_size = 3\n")
    result = run_cli(["tile", grid_file, "--catalogue", catalogue_file, "--config", path, "-o", tmp_path / "p.nc"])
    assert result.exit_code == 1
    assert result.stderr.startswith("seamountae: error:") and result.stderr.count("\n") == 1
    assert "patch_size" in result.stderr
    assert not (tmp_path / "p.nc").exists()


def tile_with(tmp_path, grid_file, catalogue_file, config_path, *options):
    out = tmp_path / "patches.nc"
    ok(run_cli(["tile", grid_file, "--catalogue", catalogue_file, "--config", config_path, *options, "-o", out, "--overwrite"]))
    with xr.open_dataset(out) as ds:
        return ds.attrs["patch_px"], ds.attrs["patch_km"], ds.sizes["sample"], ds.attrs["n_seamounts"]


def test_cli_option_overrides_config_file(tmp_path, grid_file, catalogue_file):
    path = write(tmp_path, f"[tile]\npatch_km = {PATCH_KM}\npatch_px = 8\nshifts_px = 0\nscales = [1.0]\n")
    px, km, n, n_seamounts = tile_with(tmp_path, grid_file, catalogue_file, path)
    assert (px, km, n) == (8, PATCH_KM, n_seamounts)  # the file's values: one patch per seamount
    px, km, n, n_seamounts = tile_with(tmp_path, grid_file, catalogue_file, path, "--patch-px", "16", "--shifts-px", "1")
    assert (px, km, n) == (16, PATCH_KM, 9 * n_seamounts)  # options win; the file still sets the rest


def test_grid_section_of_config_is_used(tmp_path, synthetic, catalogue_file):
    """[grid] var picks the variable of a netCDF with several grids, as --var does."""
    grid, _ = synthetic
    path = tmp_path / "two.nc"
    xr.Dataset({"depth": (("lat", "lon"), -grid.values, {"positive": "down"}),
                "other": (("lat", "lon"), np.zeros(grid.shape, np.float32))},
               coords={"lat": grid.y.values, "lon": grid.x.values}).to_netcdf(path)
    out = tmp_path / "p.nc"
    args = ["tile", path, "--catalogue", catalogue_file, "--patch-km", PATCH_KM, "--patch-px", "16", "-o", out]
    refused = run_cli(args)
    assert refused.exit_code == 1 and "--var" in refused.stderr
    ok(run_cli([*args, "--config", write(tmp_path, '[grid]\nvar = "depth"\n')]))
    with xr.open_dataset(out) as ds:
        assert np.nanmax(ds["patch"].values) < 0  # depth positive down, read as elevation below sea level


def test_config_command_prints_the_resolved_file(tmp_path):
    result = ok(run_cli(["config", "--config", write(tmp_path, "[detect]\nmin_height_m = 750.0\n")]))
    resolved = tomllib.loads(result.stdout)
    assert resolved["detect"]["min_height_m"] == 750.0
    assert resolved["tile"] == config.defaults("tile")
