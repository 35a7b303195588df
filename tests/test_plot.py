"""`seamountae plot`: a PNG map of the bathymetry, the error map and the seamounts."""

from __future__ import annotations

import json
import math
import sys

import pytest

from conftest import ok, run_cli
from seamountae.outputs import read_provenance

matplotlib = pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402  (matplotlib's own dependency)


def test_plot_with_detections_and_reference(tmp_path, score_file, detections_file, catalogue_file):
    output = tmp_path / "map.png"
    result = ok(run_cli(["plot", score_file, "--detections", detections_file, "--reference", catalogue_file,
                         "--min-height", "1000", "-o", output]))
    assert result.stdout == "" and "map.png" in result.stderr
    with Image.open(output) as image:
        width, height = image.size
        assert width > 800 and height > 600
        assert image.getextrema()[0][1] > image.getextrema()[0][0]  # not a blank canvas
    record = read_provenance(output)
    assert set(record["inputs"]) == {"score", "detections", "reference"}
    assert record["parameters"]["min_height_m"] == 1000.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.png"]


def test_plot_of_a_catalogue_and_of_the_score_alone(tmp_path, score_file, detections_file):
    ok(run_cli(["export", detections_file, "-o", tmp_path / "found.geojson"]))
    ok(run_cli(["plot", score_file, "--detections", tmp_path / "found.geojson", "-o", tmp_path / "a.png"]))
    ok(run_cli(["plot", score_file, "-o", tmp_path / "b.png"]))
    for name in ("a.png", "b.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_map_content(score_file, detections_file, catalogue_file):
    """Two panels, geographic aspect (1/cos latitude), every seamount circled, ids written."""
    from seamountae.detection import table_from_detections
    from seamountae.outputs import read_netcdf
    from seamountae.plot import draw_map

    figure = draw_map(score_file, detections_file)
    axes = [ax for ax in figure.axes if ax.get_images()]
    assert len(axes) == 2
    with read_netcdf(score_file, "score", "score") as ds:
        lat = float(ds["lat"].mean())
    assert axes[0].get_aspect() == pytest.approx(1 / math.cos(math.radians(lat)), rel=0.01)
    table = table_from_detections(read_netcdf(detections_file, "detections", "detect"))
    circles = sum(len(c.get_offsets()) for c in axes[0].collections)
    assert circles == len(table) > 0
    labels = {t.get_text() for t in axes[0].texts}
    assert labels == {str(i) for i in table["id"]}
    assert f"{len(table)} seamounts found" in figure._suptitle.get_text()


def test_reference_markers_split_confirmed_new_and_missed(score_file, detections_file, catalogue_file):
    from seamountae.plot import draw_map

    figure = draw_map(score_file, detections_file, catalogue_file, min_height_m=1000.0)
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    assert any(t.startswith("found, in the reference (id): ") for t in legend)
    assert "precision" in figure._suptitle.get_text() and "recall" in figure._suptitle.get_text()


def test_large_grids_are_drawn_decimated(score_file):
    from seamountae.plot import draw_map

    figure = draw_map(score_file, max_cells=2000)
    assert "1/" in figure._suptitle.get_text()


def test_plot_without_matplotlib_says_how_to_install_it(tmp_path, score_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    result = run_cli(["plot", score_file, "-o", tmp_path / "map.png"], catch_exceptions=True)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "pip install 'seamountae[plot]'" in result.stderr
    assert not (tmp_path / "map.png").exists()


@pytest.mark.parametrize("which, words", [("score", "expected score"), ("missing", "no such file"),
                                          ("detections", "expected detections")])
def test_bad_inputs_fail_in_one_line(which, words, tmp_path, score_file, patches_file):
    args = {"score": ["plot", patches_file],
            "missing": ["plot", tmp_path / "absent.nc"],
            "detections": ["plot", score_file, "--detections", patches_file]}[which]
    result = run_cli([*args, "-o", tmp_path / "map.png"], catch_exceptions=True)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and words in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_existing_map_needs_overwrite(tmp_path, score_file):
    (tmp_path / "map.png").write_text("mine")
    refused = run_cli(["plot", score_file, "-o", tmp_path / "map.png"], catch_exceptions=True)
    assert refused.exit_code == 1 and "--overwrite" in refused.stderr
    ok(run_cli(["plot", score_file, "-o", tmp_path / "map.png", "--overwrite"]))
    assert json.loads(Image.open(tmp_path / "map.png").text["seamountae"])["inputs"]["score"]


def test_help_shows_an_example():
    assert "seamountae plot score.nc" in ok(run_cli(["plot", "--help"])).stdout.split("Example")[1]


def test_cli_map_says_what_each_layer_is_in_todays_method(tmp_path, score_file, detections_file):
    """The right panel is the autoencoder's view; nothing claims the catalogue is a threshold on it."""
    from PIL import Image

    ok(run_cli(["plot", score_file, "--detections", detections_file, "-o", tmp_path / "map.png"]))
    with Image.open(tmp_path / "map.png") as image:
        description = image.text["Description"]
    assert "right: The autoencoder's view: reconstruction error" in description
    assert "legend: footprint of each seamount found" in description
    assert "judged candidate summits" in description
    assert "threshold" not in description
