"""Provenance: every output says what made it (version, command line, parameters, input SHA-256), and
the same command on the same inputs writes the same bytes, so a CI regression run can compare files."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
import xarray as xr

import seamountae
from conftest import TILE_OPTIONS, TRAIN_OPTIONS, file_digest, ok, run_cli
from seamountae.config import defaults
from seamountae.outputs import canonical, provenance, read_provenance, set_command
from seamountae.model import read_model

CHAIN = [
    ["tile", "grid.nc", "--catalogue", "truth.csv", *TILE_OPTIONS, "-o", "patches.nc"],
    ["train", "patches.nc", *TRAIN_OPTIONS, "--epochs", "2", "-o", "model.pt"],
    ["score", "grid.nc", "--model", "model.pt", "--device", "cpu", "-o", "score.nc"],
    ["detect", "score.nc", "-o", "detections.nc"],
    ["export", "detections.nc", "-o", "seamounts.geojson"],
    ["export", "detections.nc", "-o", "seamounts.csv"],
]


def run_chain(folder, data_dir, monkeypatch):
    folder.mkdir()
    for name in ("grid.nc", "truth.csv"):
        shutil.copyfile(data_dir / name, folder / name)
    monkeypatch.chdir(folder)
    for args in CHAIN:
        ok(run_cli(args))
    return {p.name: file_digest(p) for p in folder.iterdir()}


@pytest.fixture(scope="module")
def chains(tmp_path_factory, data_dir):
    """The chain run twice, in two folders, with the same command lines."""
    monkeypatch = pytest.MonkeyPatch()
    try:
        root = tmp_path_factory.mktemp("twice")
        return root, run_chain(root / "a", data_dir, monkeypatch), run_chain(root / "b", data_dir, monkeypatch)
    finally:
        monkeypatch.undo()


def test_same_seed_inputs_and_commands_give_identical_bytes(chains):
    """train → score → detect → export twice: every file, the catalogue included, byte for byte."""
    _, first, second = chains
    assert set(first) == {"grid.nc", "truth.csv", "patches.nc", "model.pt", "score.nc", "detections.nc",
                          "seamounts.geojson", "seamounts.csv"}
    assert first == second


def test_records_hold_no_time_and_the_command_line_as_given(chains):
    root, _, _ = chains
    for args in CHAIN:
        output = root / "a" / args[args.index("-o") + 1]
        record = read_provenance(output)
        assert record["command"] == "seamountae " + " ".join(args), output
        assert record["seamountae_version"] == seamountae.__version__
        # A catalogue also records the searched grid's extent, which `evaluate` clips its reference to.
        catalogue = output.suffix in (".geojson", ".csv")
        assert set(record) == {"seamountae_version", "command", "parameters", "inputs"} | ({"grid_extent"} if catalogue else set())


@pytest.mark.parametrize("name, roles", [
    ("patches.nc", {"grid": "grid.nc", "catalogue": "truth.csv"}),
    ("model.pt", {"patches": "patches.nc"}),
    ("score.nc", {"grid": "grid.nc", "model": "model.pt"}),
    ("detections.nc", {"score": "score.nc"}),
    ("seamounts.geojson", {"detections": "detections.nc"}),
    ("seamounts.csv", {"detections": "detections.nc"}),
])
def test_every_output_records_its_inputs_hashes(chains, name, roles):
    root, digests, _ = chains
    record = read_provenance(root / "a" / name)
    assert {role: entry["sha256"] for role, entry in record["inputs"].items()} == {r: digests[f] for r, f in roles.items()}
    assert {role: entry["path"] for role, entry in record["inputs"].items()} == roles


def test_resolved_parameters_are_recorded(chains):
    root, _, _ = chains
    tile = read_provenance(root / "a" / "patches.nc")["parameters"]
    assert tile["patch_km"] == 24.0 and tile["scales"] == list(defaults("tile")["scales"])  # given and default alike
    assert tile["grid"] == {"var": "", "depth_positive": "auto", "mask_land": True, "crs": "", "islands": True}
    train = read_provenance(root / "a" / "model.pt")["parameters"]
    assert train["epochs"] == 2 and train["seed"] == 0 and train["folds"] == defaults("train")["folds"]
    detect = read_provenance(root / "a" / "detections.nc")["parameters"]
    assert detect["threshold"] == "auto" and detect["min_height_m"] == defaults("detect")["min_height_m"]


def test_the_record_is_where_each_format_keeps_it(chains):
    root, _, _ = chains
    folder = root / "a"
    with xr.open_dataset(folder / "score.nc") as ds:  # netCDF: global attributes
        assert json.loads(ds.attrs["seamountae_inputs"])["model"]["path"] == "model.pt"
        assert ds.attrs["history"].startswith("seamountae score grid.nc")
    doc = json.loads((folder / "seamounts.geojson").read_text())  # GeoJSON: a top-level member
    assert doc["seamountae"]["parameters"] == {"format": "geojson"}
    first = (folder / "seamounts.csv").read_text().splitlines()[0]  # CSV: a header comment
    assert json.loads(first[len("# seamountae "):])["parameters"] == {"format": "csv"}
    _, meta = read_model(folder / "model.pt")  # model: its metadata
    assert meta["provenance"]["inputs"]["patches"]["path"] == "patches.nc"


def test_model_bytes_do_not_depend_on_the_output_name(tmp_path, patches_file):
    """torch.save names its archive after the file; saving through a handle keeps temporary names out."""
    ok(run_cli(["train", patches_file, *TRAIN_OPTIONS, "--epochs", "1", "-o", tmp_path / "one.pt"]))
    ok(run_cli(["train", patches_file, *TRAIN_OPTIONS, "--epochs", "1", "-o", tmp_path / "two.pt"]))
    names = [zipfile.ZipFile(tmp_path / name).namelist() for name in ("one.pt", "two.pt")]
    assert names[0] == names[1] and not any(".part" in n or "one" in n for n in names[0])


def test_command_line_is_the_one_of_the_command_not_of_the_process():
    set_command(["seamountae", "detect", "a b.nc", "-o", "x.nc"])
    try:
        assert provenance()["command"] == "seamountae detect 'a b.nc' -o x.nc"  # quoted as a shell would need
    finally:
        set_command(None)


def test_unreadable_or_foreign_files_have_no_record(tmp_path, grid_file, catalogue_file):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "bad.json").write_text("{")
    for path in (tmp_path / "absent.nc", tmp_path / "notes.txt", tmp_path / "bad.json", grid_file, catalogue_file):
        assert read_provenance(path) is None, path


def test_canonical_is_what_a_record_reads_back_as():
    assert canonical({"scales": (0.85, 1.0), "b": 1}) == {"b": 1, "scales": [0.85, 1.0]}


def test_hashes_are_remembered_only_inside_a_run(tmp_path):
    from seamountae.outputs import remembered_hashes, sha256

    path = tmp_path / "grid.bin"
    path.write_bytes(b"a" * 64)
    first = sha256(path)
    path.write_bytes(b"b" * 64)  # same size, same inode, maybe the same clock tick
    assert sha256(path) != first  # outside a run every call reads the file
    with remembered_hashes():
        inside = sha256(path)
        path.with_name("other").write_bytes(b"c" * 64)
        path.with_name("other").replace(path)  # replaced as outputs are: another inode
        assert sha256(path) != inside
