"""`seamountae run CONFIG.toml`: the whole chain from one file, skipping what is up to date."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from pathlib import Path

import pytest

from conftest import EPOCHS, PATCH_KM, PATCH_PX, file_digest, ok, run_cli
from seamountae import pipeline
from seamountae.catalogue import read_catalogue
from seamountae.outputs import read_provenance

OUTPUTS = ["patches.nc", "model.pt", "score.nc", "detections.nc", "seamounts.geojson"]
STAGES = ["tile", "train", "score", "detect", "export"]
ROOT = Path(__file__).resolve().parents[1]


def config_text(output_dir="out", reference=True, extra=""):
    return f"""
[run]
grid_train = "inputs/grid.nc"
catalogue = "inputs/truth.csv"
output_dir = "{output_dir}"
{'reference = "inputs/truth.csv"' if reference else ''}

[tile]
patch_km = {PATCH_KM}
patch_px = {PATCH_PX}

[train]
epochs = {EPOCHS}
seed = 0
device = "cpu"

[score]
device = "cpu"

[evaluate]
min_height_m = 1000.0
{extra}
"""


def make_project(folder: Path, data_dir: Path, text: str) -> Path:
    """folder/inputs/{grid.nc, truth.csv} and folder/run.toml."""
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    for name in ("grid.nc", "truth.csv"):
        shutil.copyfile(data_dir / name, folder / "inputs" / name)
    config = folder / "run.toml"
    config.write_text(text)
    return config


def digests(folder: Path) -> dict:
    return {p.name: file_digest(p) for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def project(tmp_path_factory, data_dir):
    """A run made once: (config path, output folder, the first run's result)."""
    folder = tmp_path_factory.mktemp("project")
    config = make_project(folder, data_dir, config_text())
    result = ok(run_cli(["run", config]))
    return config, folder / "out", result


def test_run_writes_every_output(project):
    config, out, result = project
    for name in [*OUTPUTS, "evaluation.json", "config.resolved.toml"]:
        assert (out / name).is_file(), name
    assert not list(out.glob("*.part")) and not list(out.glob("*.ckpt"))
    for stage in STAGES:
        assert f"{stage}: writing" in result.stderr
    # With a reference: the evaluation report on stdout (data), everything else on stderr.
    assert result.stdout.startswith("reference: ") and "\nfound " in result.stdout and "precision" in result.stdout
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["recall"] >= 0.75 and evaluation["parameters"]["min_height_m"] == 1000.0
    assert evaluation["seamountae"]["inputs"]["catalogue"]["sha256"] == file_digest(out / "seamounts.geojson")


def test_run_gives_what_the_commands_give(project, detections_file, tmp_path):
    """The same parameters through run and through the five commands (conftest): the same seamounts."""
    _, out, _ = project
    ok(run_cli(["export", detections_file, "-o", tmp_path / "commands.geojson"]))
    by_commands = json.loads((tmp_path / "commands.geojson").read_text())
    by_run = json.loads((out / "seamounts.geojson").read_text())
    assert by_run["features"] == by_commands["features"] and by_run["features"]
    assert read_provenance(out / "model.pt")["parameters"] == read_provenance(detections_file.parent / "model.pt")["parameters"]


def test_second_run_skips_every_stage_and_changes_nothing(project):
    config, out, _ = project
    before = digests(out)
    result = ok(run_cli(["run", config]))
    for stage in STAGES:
        assert f"{stage}: {out / OUTPUTS[STAGES.index(stage)]} is up to date" in result.stderr
    assert "writing" not in result.stderr
    assert digests(out) == before


def test_touching_an_input_without_changing_it_reruns_nothing(project):
    """Content decides, not file times: a copied or touched grid is still the same grid."""
    config, out, _ = project
    grid = config.parent / "inputs" / "grid.nc"
    os.utime(grid, (1, 1))
    result = ok(run_cli(["run", config]))
    assert "writing" not in result.stderr


def test_resolved_config_holds_every_parameter_and_reruns_from_its_folder(project):
    config, out, _ = project
    resolved = tomllib.loads((out / "config.resolved.toml").read_text())
    assert resolved["run"]["output_dir"] == "."
    assert (out / resolved["run"]["grid_train"]).resolve() == (config.parent / "inputs" / "grid.nc").resolve()
    assert resolved["tile"]["patch_km"] == PATCH_KM and resolved["train"]["epochs"] == EPOCHS
    assert resolved["detect"]["threshold"] == "auto"  # defaults are written out too
    from seamountae.config import PARAMETERS

    assert set(PARAMETERS) <= set(resolved)
    # Run from the output folder itself: every stage is up to date.
    result = ok(run_cli(["run", out / "config.resolved.toml"]))
    assert "writing" not in result.stderr


def test_changing_a_parameter_reruns_that_stage_and_the_ones_after_it(tmp_path, project):
    config, out, _ = project
    copy = tmp_path / "project"
    shutil.copytree(config.parent, copy)
    text = (copy / "run.toml").read_text().replace("[evaluate]", "[detect]\nmin_height_m = 600.0\n\n[evaluate]")
    (copy / "run.toml").write_text(text)
    result = ok(run_cli(["run", copy / "run.toml"]))
    for stage in ("tile", "train", "score"):
        assert f"{stage}: " in result.stderr and "is up to date" in result.stderr.split(f"{stage}: ")[1].splitlines()[0]
    for stage in ("detect", "export"):
        assert f"{stage}: writing" in result.stderr
    heights = [f["properties"]["height_m"] for f in json.loads((copy / "out" / "seamounts.geojson").read_text())["features"]]
    assert heights and min(heights) >= 600.0


def test_force_runs_every_stage_again(tmp_path, project):
    config, out, _ = project
    copy = tmp_path / "project"
    shutil.copytree(config.parent, copy)
    result = ok(run_cli(["run", copy / "run.toml", "--force"]))
    for stage in STAGES:
        assert f"{stage}: writing" in result.stderr
    features = [json.loads((folder / "seamounts.geojson").read_text())["features"] for folder in (out, copy / "out")]
    assert features[0] == features[1]
    assert (copy / "out" / "config.resolved.toml").read_text() == (out / "config.resolved.toml").read_text()


def test_csv_format_and_plot(tmp_path, data_dir):
    pytest.importorskip("matplotlib")
    config = make_project(tmp_path, data_dir, config_text(reference=False, extra='[export]\nformat = "csv"\n')
                          .replace("[run]\n", "[run]\nplot = true\n"))
    result = ok(run_cli(["run", config, "-q"]))
    out = tmp_path / "out"
    assert (out / "seamounts.csv").read_text().startswith("# seamountae {")
    assert len(read_catalogue(out / "seamounts.csv")) >= 1
    assert (out / "map.png").read_bytes().startswith(b"\x89PNG")
    assert not (out / "evaluation.json").exists() and result.stdout == ""
    assert result.stderr == ""  # -q: nothing but errors


def test_grid_search_defaults_to_grid_train(tmp_path, data_dir):
    config = make_project(tmp_path, data_dir, config_text(reference=False))
    cfg = pipeline.read_run_config(config)
    assert cfg.files["grid_search"] == cfg.files["grid_train"] == tmp_path / "inputs" / "grid.nc"
    assert cfg.output_dir == tmp_path / "out"
    assert cfg.params["score"]["batch_size"] == "auto"


def test_interrupted_run_keeps_finished_stages_and_continues(tmp_path, data_dir, monkeypatch):
    config = make_project(tmp_path, data_dir, config_text(reference=False))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "detect_file", interrupted)
    stopped = run_cli(["run", config], catch_exceptions=True)
    assert stopped.exit_code == 130 and "interrupted" in stopped.stderr
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"config.resolved.toml", "patches.nc", "model.pt", "score.nc"}
    monkeypatch.undo()
    result = ok(run_cli(["run", config]))
    assert "score: " in result.stderr and "writing" not in result.stderr.split("detect:")[0]
    assert "detect: writing" in result.stderr and (out / "seamounts.geojson").exists()


# ------------------------------------------------------------------------------------- bad input


def test_help_shows_an_example():
    result = ok(run_cli(["run", "--help"]))
    assert "seamountae run configs/demo.toml" in result.stdout.split("Example")[1]


@pytest.mark.parametrize("text, words", [
    ("[train]\nepochs = 3\n", "no [run] section"),
    ('[run]\ncatalogue = "inputs/truth.csv"\n', "[run] has no grid_train"),
    ('[run]\ngrid_train = "inputs/grid.nc"\n', "[run] has no catalogue"),
    ('[run]\ngrid_train = "inputs/absent.nc"\ncatalogue = "inputs/truth.csv"\n', "grid_train: "),
    ('[run]\ngrid_train = "inputs/grid.nc"\ncatalogue = "inputs/truth.csv"\nreference = "nope.csv"\n', "does not exist"),
    ('[run]\ngrid_train = "inputs/grid.nc"\ncatalogue = "inputs/truth.csv"\ngrid = "x"\n', "unknown key(s) grid in [run]"),
    ('[run]\ngrid_train = 3\ncatalogue = "inputs/truth.csv"\n', "must be a path in quotes"),
    ('[run]\ngrid_train = "inputs/grid.nc"\ncatalogue = "inputs/truth.csv"\nplot = "yes"\n', "must be true or false"),
    ('[run]\ngrid_train = "inputs/grid.nc"\ncatalogue = "inputs/truth.csv"\n[train]\nepochs = 0\n', "epochs = 0: must be 1 or more"),
    ('[run]\ngrid_train = "inputs/grid.nc"\ncatalogue = "inputs/truth.csv"\n[evaluate]\nmatch_km = -1\n', "match_km"),
    ('[run\n', "not valid TOML"),
])
def test_bad_config_fails_in_one_line_and_writes_nothing(tmp_path, data_dir, text, words):
    config = make_project(tmp_path, data_dir, text)
    result = run_cli(["run", config], catch_exceptions=True)
    assert result.exit_code == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"seamountae: error: {config}"), result.stderr
    assert words in lines[0]
    assert not (tmp_path / "seamountae_output").exists() and not (tmp_path / "out").exists()


def test_missing_config_file(tmp_path):
    result = run_cli(["run", tmp_path / "absent.toml"], catch_exceptions=True)
    assert result.exit_code == 1 and "no such config file" in result.stderr and "--template" in result.stderr


def test_output_dir_under_a_file(tmp_path, data_dir):
    (tmp_path / "blocker").write_text("a file")
    config = make_project(tmp_path, data_dir, config_text(output_dir="blocker/out"))
    result = run_cli(["run", config], catch_exceptions=True)
    assert result.exit_code == 1 and "cannot create the output folder" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_file_seamountae_did_not_write_is_kept_unless_overwrite(tmp_path, data_dir, monkeypatch):
    config = make_project(tmp_path, data_dir, config_text(reference=False))
    out = tmp_path / "out"
    out.mkdir()
    (out / "score.nc").write_text("my own notes")
    refused = run_cli(["run", config], catch_exceptions=True)
    assert refused.exit_code == 1 and "score.nc: exists and is not a seamountae output" in refused.stderr
    assert "--overwrite" in refused.stderr
    assert (out / "score.nc").read_text() == "my own notes" and not (out / "patches.nc").exists()
    ok(run_cli(["run", config, "--overwrite"]))
    assert read_provenance(out / "score.nc") is not None


def test_unusable_device_in_the_config(tmp_path, data_dir, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = make_project(tmp_path, data_dir, config_text().replace('[score]\ndevice = "cpu"', '[score]\ndevice = "cuda"'))
    result = run_cli(["run", config], catch_exceptions=True)
    assert result.exit_code == 1 and "CUDA is not available" in result.stderr
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------- the demo


def test_demo_config_matches_the_makefile():
    """configs/demo.toml: the Makefile demo's files, epochs and seed."""
    makefile = (ROOT / "Makefile").read_text()
    cfg = pipeline.read_run_config(ROOT / "configs" / "demo.toml")
    for key, name in (("grid_train", "azores_west.nc"), ("catalogue", "azores_west_seamounts.csv"),
                      ("grid_search", "azores_east.nc"), ("reference", "azores_east_seamounts.csv")):
        assert cfg.files[key].resolve() == (ROOT / "sample_data" / name).resolve()
        assert f"sample_data/{name}" in makefile
    assert cfg.output_dir.resolve() == (ROOT / "demo_output").resolve()
    train_line = next(line for line in makefile.splitlines() if "seamountae train" in line)
    assert f"--epochs {cfg.params['train']['epochs']}" in train_line
    assert f"--seed {cfg.params['train']['seed']}" in train_line
    evaluate_line = next(line for line in makefile.splitlines() if "seamountae evaluate" in line)
    assert f"--min-height-m {cfg.params['evaluate']['min_height_m']:g}" in evaluate_line


@pytest.mark.slow
def test_run_demo_reproduces_make_demo(tmp_path):
    """`seamountae run configs/demo.toml` and the Makefile's five commands: the same catalogue (minutes)."""
    import subprocess
    import sys

    text = (ROOT / "configs" / "demo.toml").read_text().replace('"../', f'"{ROOT}/')
    text = text.replace(f'output_dir = "{ROOT}/demo_output"', f'output_dir = "{tmp_path / "run"}"')
    (tmp_path / "demo.toml").write_text(text)
    seamountae = [sys.executable, "-m", "seamountae"]
    subprocess.run([*seamountae, "run", str(tmp_path / "demo.toml"), "-q"], check=True, capture_output=True)
    d, s = tmp_path, ROOT / "sample_data"
    for args in (["tile", s / "azores_west.nc", "--catalogue", s / "azores_west_seamounts.csv", "-o", d / "patches.nc"],
                 ["train", d / "patches.nc", "-o", d / "model.pt", "--epochs", "30", "--seed", "0"],
                 ["score", s / "azores_east.nc", "--model", d / "model.pt", "-o", d / "score.nc"],
                 ["detect", d / "score.nc", "-o", d / "detections.nc"],
                 ["export", d / "detections.nc", "-o", d / "seamounts.geojson"]):
        subprocess.run([*seamountae, *map(str, args)], check=True, capture_output=True)
    made = json.loads((d / "seamounts.geojson").read_text())["features"]
    ran = json.loads((d / "run" / "seamounts.geojson").read_text())["features"]
    assert made == ran and len(made) > 50
