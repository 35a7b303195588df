"""Bad inputs through the command line.

Each case must: exit non-zero, print one line on stderr (no traceback), leave no output file (nor a
temporary `.part`) behind, and change no input file.
"""

from __future__ import annotations

import errno
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from conftest import TILE_OPTIONS, TRAIN_OPTIONS, file_digest, run_cli
from seamountae.grid import write_grid


@dataclass
class Case:
    args: list
    output: Path | None
    inputs: list = field(default_factory=list)
    message: str = ""  # words the error line must contain


class Maker:
    """Builds each bad input in the test's own folder from the shared (read-only) good ones."""

    def __init__(self, tmp_path, synthetic, files):
        self.tmp = tmp_path
        self.grid, self.truth = synthetic
        self.f = files
        self.out = tmp_path / "out"
        self.out.mkdir()

    def path(self, name):
        return self.tmp / name

    def text(self, name, content="this is not a grid\n"):
        p = self.path(name)
        p.write_text(content)
        return p

    def truncated(self, source, name):
        p = self.path(name)
        data = Path(source).read_bytes()
        p.write_bytes(data[: len(data) // 2])
        return p

    def netcdf(self, name, variables, lat=None, lon=None):
        lat = self.grid.y.values if lat is None else lat
        lon = self.grid.x.values if lon is None else lon
        ds = xr.Dataset({k: (dims, v) for k, (dims, v) in variables.items()}, coords={"lat": lat, "lon": lon})
        p = self.path(name)
        ds.to_netcdf(p)
        return p

    # The commands, each writing its output into self.out.
    def tile(self, grid=None, catalogue=None, *extra):
        out = self.out / "patches.nc"
        grid, catalogue = grid or self.f["grid"], catalogue or self.f["catalogue"]
        return Case(["tile", grid, "--catalogue", catalogue, *TILE_OPTIONS, *extra, "-o", out], out, [grid, catalogue])

    def train(self, patches=None):
        out = self.out / "model.pt"
        patches = patches or self.f["patches"]
        return Case(["train", patches, *TRAIN_OPTIONS, "--epochs", "1", "-o", out], out, [patches])

    def score(self, grid=None, model=None, *extra):
        out = self.out / "score.nc"
        grid, model = grid or self.f["grid"], model or self.f["model"]
        return Case(["score", grid, "--model", model, "--device", "cpu", "--stride-px", "4", *extra, "-o", out],
                    out, [grid, model])

    def detect(self, score=None):
        out = self.out / "detections.nc"
        score = score or self.f["score"]
        return Case(["detect", score, "-o", out], out, [score])

    def export(self, detections=None, name="seamounts.geojson"):
        out = self.out / name
        detections = detections or self.f["detections"]
        return Case(["export", detections, "-o", out], out, [detections])


def _with(case: Case, message: str) -> Case:
    case.message = message
    return case


def _small_grid(m):
    p = m.path("small.nc")
    write_grid(m.grid.isel(y=slice(40, 52), x=slice(40, 52)), p)  # ~22 x 19 km: less than one 24 km patch
    return p


def _small_catalogue(m):
    g = m.grid.isel(y=slice(40, 52), x=slice(40, 52))
    return m.text("inside_small.csv", f"lon,lat\n{float(g.x.mean())},{float(g.y.mean())}\n")


def _non_monotonic(m):
    lon = m.grid.x.values.copy()
    lon[[10, 11]] = lon[[11, 10]]
    return m.netcdf("shuffled.nc", {"z": (("lat", "lon"), m.grid.values)}, lon=lon)


def _all_nan(m):
    return m.netcdf("nan.nc", {"z": (("lat", "lon"), np.full(m.grid.shape, np.nan, np.float32))})


def _striped(m):
    values = m.grid.values.copy()
    values[:, ::2] = np.nan  # every resampled pixel touches a missing cell: no patch can be scored
    return m.netcdf("striped.nc", {"z": (("lat", "lon"), values)})


def _no_2d(m):
    return m.netcdf("profile.nc", {"z": (("lat",), np.zeros(m.grid.sizes["y"], np.float32))})


def _two_grids(m):
    return m.netcdf("two.nc", {"z": (("lat", "lon"), m.grid.values), "sigma": (("lat", "lon"), np.ones(m.grid.shape))})


def _tif_without_crs(m, name, x0, y0, cell):
    """The synthetic grid as a GeoTIFF with a transform but no CRS."""
    import rasterio
    from rasterio.transform import Affine

    p = m.path(name)
    values = m.grid.values[::-1]  # north-up
    with rasterio.open(p, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype="float32", transform=Affine(cell, 0, x0, 0, -cell, y0)) as dst:
        dst.write(values.astype(np.float32), 1)
    return p


def _evil_model(m):
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {m.path('MARKER')}",))

    p = m.path("evil.pt")
    torch.save({"format": "seamountae-model", "state_dict": Payload()}, p)
    return p


def _evil_open(m):
    class Payload:
        def __reduce__(self):
            return (open, (str(m.path("MARKER")), "w"))

    p = m.path("evil_open.pt")
    torch.save([Payload()], p)
    return p


CASES = {
    # missing files
    "tile: missing grid": lambda m: _with(m.tile(m.path("absent.nc")), "not found"),
    "tile: missing catalogue": lambda m: _with(m.tile(None, m.path("absent.csv")), "not found"),
    "train: missing patches": lambda m: _with(m.train(m.path("absent.nc")), "no such file"),
    "score: missing grid": lambda m: _with(m.score(m.path("absent.tif")), "not found"),
    "score: missing model": lambda m: _with(m.score(None, m.path("absent.pt")), "no such model file"),
    "detect: missing score": lambda m: _with(m.detect(m.path("absent.nc")), "no such file"),
    "export: missing detections": lambda m: _with(m.export(m.path("absent.nc")), "no such file"),
    # text or truncated files with grid names
    "tile: text file named .nc": lambda m: _with(m.tile(m.text("grid.nc")), "not a readable netCDF or GeoTIFF"),
    "score: text file named .tif": lambda m: _with(m.score(m.text("grid.tif")), "not a readable netCDF or GeoTIFF"),
    "tile: truncated .nc": lambda m: _with(m.tile(m.truncated(m.f["grid"], "cut.nc")), "truncated"),
    "score: truncated .tif": lambda m: _with(m.score(m.truncated(m.f["tif"], "cut.tif")), "not a readable"),
    "train: text file named .nc": lambda m: _with(m.train(m.text("patches.nc")), "not a readable netCDF"),
    "train: truncated patches": lambda m: _with(m.train(m.truncated(m.f["patches"], "cut.nc")), "not a readable netCDF"),
    "detect: truncated score": lambda m: _with(m.detect(m.truncated(m.f["score"], "cut.nc")), "not a readable netCDF"),
    "export: truncated detections": lambda m: _with(m.export(m.truncated(m.f["detections"], "cut.nc")), "not a readable"),
    # grids that are not usable
    "score: no 2-D variable": lambda m: _with(m.score(_no_2d(m)), "no 2-D variable"),
    "tile: several 2-D variables without --var": lambda m: _with(m.tile(_two_grids(m)), "--var"),
    "score: --var naming no variable": lambda m: _with(m.score(_two_grids(m), None, "--var", "depth"), "does not exist"),
    "score: all-NaN grid": lambda m: _with(m.score(_all_nan(m)), "no valid cells"),
    "tile: all-NaN grid": lambda m: _with(m.tile(_all_nan(m)), "no valid cells"),
    "score: no patch with enough valid cells": lambda m: _with(m.score(_striped(m)), "no 24 km patch has enough valid cells"),
    "score: grid smaller than one patch": lambda m: _with(m.score(_small_grid(m)), "smaller than one"),
    "tile: grid smaller than one patch": lambda m: _with(m.tile(_small_grid(m), _small_catalogue(m)), "smaller than one"),
    "score: projected GeoTIFF without a CRS": lambda m: _with(
        m.score(_tif_without_crs(m, "utm.tif", 400000.0, 4300000.0, 1852.0)), "records no CRS"),
    "score: --crs that is not a CRS": lambda m: _with(m.score(None, None, "--crs", "EPSG:99999999"), "--crs"),
    "score: non-monotonic coordinates": lambda m: _with(m.score(_non_monotonic(m)), "not monotonic"),
    "tile: non-monotonic coordinates": lambda m: _with(m.tile(_non_monotonic(m)), "not monotonic"),
    # catalogues
    "tile: catalogue without lon/lat": lambda m: _with(m.tile(None, m.text("cat.csv", "name,depth\na,1\n")), "no longitude/latitude"),
    "tile: catalogue with no point inside": lambda m: _with(m.tile(None, m.text("far.csv", "lon,lat\n100,10\n101,11\n")), "none of its 2 points"),
    "tile: grid given as catalogue": lambda m: _with(m.tile(None, m.f["grid"]), "binary"),
    # models
    "score: truncated model": lambda m: _with(m.score(None, m.truncated(m.f["model"], "cut.pt")), "not a seamountae model"),
    "score: text model": lambda m: _with(m.score(None, m.text("model.pt", "weights\n")), "not a seamountae model"),
    "score: netCDF as model": lambda m: _with(m.score(None, m.f["score"]), "not a seamountae model"),
    "score: model that would run code": lambda m: _with(m.score(None, _evil_model(m)), "refused"),
    "score: model that would open a file": lambda m: _with(m.score(None, _evil_open(m)), "refused"),
    # the wrong kind of artifact
    "train: score file as patches": lambda m: _with(m.train(m.f["score"]), "expected patches"),
    "detect: patches file": lambda m: _with(m.detect(m.f["patches"]), "seamountae patches file, expected score"),
    "detect: grid file": lambda m: _with(m.detect(m.f["grid"]), "not a seamountae file"),
    "detect: model file": lambda m: _with(m.detect(m.f["model"]), "not a readable netCDF"),
    "export: score file": lambda m: _with(m.export(m.f["score"]), "expected detections"),
    "export: catalogue": lambda m: _with(m.export(m.f["catalogue"]), "not a readable netCDF"),
    "export: output suffix of no known format": lambda m: _with(m.export(None, "seamounts.shp"), "--format"),
    # bad option values
    "tile: patch px not a multiple of 8": lambda m: _with(m.tile(None, None, "--patch-px", "12"), "--patch-px 12"),
    "score: zero stride": lambda m: _with(m.score(None, None, "--stride-px", "0"), "--stride-px 0"),
    "detect: threshold out of range": lambda m: _with(
        Case(["detect", m.f["score"], "--threshold", "1.5", "-o", m.out / "d.nc"], m.out / "d.nc", [m.f["score"]]),
        "--threshold"),
}


@pytest.fixture
def maker(tmp_path, synthetic, data_dir, artifacts):
    files = {"grid": data_dir / "grid.nc", "tif": data_dir / "grid.tif", "catalogue": data_dir / "truth.csv", **artifacts}
    return Maker(tmp_path, synthetic, files)


def assert_clean_failure(case: Case, result):
    assert result.exit_code != 0, result.stderr
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # handled, not a crash
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("seamountae: error: ")
    assert case.message in lines[0], lines[0]
    if case.output is not None:
        assert not case.output.exists()
        assert not list(case.output.parent.glob("*.part")), list(case.output.parent.iterdir())


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_fails_cleanly(name, maker):
    case = CASES[name](maker)
    before = {p: file_digest(p) for p in case.inputs if Path(p).is_file()}
    result = run_cli(case.args, catch_exceptions=True)
    assert_clean_failure(case, result)
    assert {p: file_digest(p) for p in before} == before  # inputs untouched
    assert not maker.path("MARKER").exists()  # nothing in a model file ran


# --------------------------------------------------------------------------- unwritable outputs


WRITERS = ["tile", "train", "score", "detect", "export"]


def _with_output(maker, command, output):
    case = getattr(maker, command)()
    case.args[case.args.index("-o") + 1] = output
    case.output = output
    return case


@pytest.mark.parametrize("command", WRITERS)
@pytest.mark.parametrize("where", ["parent missing", "parent is a file"])
def test_output_folder_that_cannot_be_written(command, where, maker):
    if where == "parent missing":
        output, words = maker.path("no") / "such" / "out.file", "does not exist"
    else:
        output, words = maker.text("a_file.txt") / "out.file", "not a folder"
    case = _with(_with_output(maker, command, output), words)
    assert_clean_failure(case, run_cli(case.args, catch_exceptions=True))


def test_synth_into_a_path_under_a_file(maker):
    target = maker.text("a_file.txt") / "syn"
    case = Case(["synth", "-o", target, "--size", "32", "32"], None, message="cannot create the output folder")
    assert_clean_failure(case, run_cli(case.args, catch_exceptions=True))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders anyway")
@pytest.mark.parametrize("command", WRITERS)
def test_output_folder_without_write_permission(command, maker):
    folder = maker.path("locked")
    folder.mkdir()
    folder.chmod(0o500)
    try:
        case = _with(_with_output(maker, command, folder / "out.file"), "not writable")
        assert_clean_failure(case, run_cli(case.args, catch_exceptions=True))
    finally:
        folder.chmod(0o700)


# ------------------------------------------------------------------------------------- disk full


def _no_space():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _fill_path_then_fail(original_name):
    def full(*args, **kwargs):
        target = args[1] if len(args) > 1 else next(iter(kwargs.values()))
        if hasattr(target, "write"):
            target.write("partial" if "b" not in getattr(target, "mode", "") else b"partial")
        else:
            Path(target).write_bytes(b"partial")  # half a file on disk, then the disk is full
        raise _no_space()

    full.__name__ = original_name
    return full


@pytest.mark.parametrize("command", ["tile", "train", "score", "detect", "export", "export csv", "synth"])
def test_disk_full_while_writing(command, maker, monkeypatch):
    monkeypatch.setattr(xr.Dataset, "to_netcdf", _fill_path_then_fail("to_netcdf"))
    monkeypatch.setattr(torch, "save", _fill_path_then_fail("save"))
    monkeypatch.setattr(json, "dump", _fill_path_then_fail("dump"))
    monkeypatch.setattr(pd.DataFrame, "to_csv", _fill_path_then_fail("to_csv"))
    if command == "synth":
        folder = maker.path("syn")
        case = Case(["synth", "-o", folder, "--size", "32", "32"], folder / "grid.nc")
    elif command == "export csv":
        case = maker.export(name="seamounts.csv")
    else:
        case = getattr(maker, command)()
    case.message = "No space left on device"
    before = {p: file_digest(p) for p in case.inputs}
    assert_clean_failure(case, run_cli(case.args, catch_exceptions=True))
    assert {p: file_digest(p) for p in before} == before
    leftovers = [p.name for p in case.output.parent.iterdir()] if case.output.parent.exists() else []
    assert not any(name.endswith(".part") or name.startswith(".") for name in leftovers), leftovers
