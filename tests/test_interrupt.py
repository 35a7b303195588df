"""An interrupted command (Ctrl-C, kill, crash) never leaves a half-written file under the output's name.

Each case runs a real `seamountae` process, made to pause in the middle of writing its output
(the pause announces itself on stdout), signals it there, and looks at what is left on disk:
- SIGINT (Ctrl-C) and SIGTERM (kill): the process removes its temporary file and exits 130
  (SIGINT) or 143 (SIGTERM); nothing under the final name, no temporary file either;
- SIGKILL (nothing can run): no file under the final name; the temporary file (hidden, `.part`)
  may remain — that is all a killed process can leave.
An output that already existed (replaced with --overwrite) is left whole, the old version.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import TILE_OPTIONS, TRAIN_OPTIONS

# Pauses the command mid-write, then runs it. PAUSE_AT says where:
#   score: after the first tile of the score map went into the open netCDF file;
#   json: in the middle of the GeoJSON text;  netcdf: after a netCDF file was written, before its rename;
#   torch: in the middle of the model file.
PRELUDE = r"""
import os, sys, time
where = os.environ["PAUSE_AT"]

def pause():
    print("PAUSED", flush=True)
    time.sleep(120)

if where == "score":
    import seamountae.scorefile as scorefile
    real = scorefile.cell_outputs
    def slow(*args, **kwargs):
        values = real(*args, **kwargs)
        pause()
        return values
    scorefile.cell_outputs = slow
elif where == "json":
    import json
    real_dump = json.dump
    def slow_dump(obj, handle, **kwargs):
        text = json.dumps(obj, **kwargs)
        handle.write(text[: len(text) // 2])
        handle.flush()
        pause()
        handle.write(text[len(text) // 2:])
    json.dump = slow_dump
elif where == "netcdf":
    import xarray
    real_to_netcdf = xarray.Dataset.to_netcdf
    def slow_to_netcdf(self, *args, **kwargs):
        result = real_to_netcdf(self, *args, **kwargs)
        pause()
        return result
    xarray.Dataset.to_netcdf = slow_to_netcdf
elif where == "torch":
    import torch
    real_save = torch.save
    def slow_save(obj, handle, *args, **kwargs):
        real_save(obj, handle, *args, **kwargs)
        if ".ckpt" in handle.name:  # the checkpoint is written whole: pause in the model file
            return
        handle.flush()
        handle.truncate(handle.tell() // 2)  # half a model file on disk
        pause()
    torch.save = slow_save
sys.argv[0] = "seamountae"
from seamountae.cli import main
main()
"""


@pytest.fixture
def commands(tmp_path, grid_file, catalogue_file, patches_file, model_file, score_file, detections_file):
    out = tmp_path / "out"
    out.mkdir()
    return {
        "score": ("score", ["score", grid_file, "--model", model_file, "--device", "cpu", "--threads", "1"], out / "score.nc"),
        "export": ("json", ["export", detections_file], out / "seamounts.geojson"),
        "detect": ("netcdf", ["detect", score_file], out / "detections.nc"),
        "tile": ("netcdf", ["tile", grid_file, "--catalogue", catalogue_file, *TILE_OPTIONS], out / "patches.nc"),
        "train": ("torch", ["train", patches_file, *TRAIN_OPTIONS, "--epochs", "1", "--threads", "1"], out / "model.pt"),
    }


def interrupt(where, args, output, sig, extra=()):
    """Run the command, signal it once it has paused mid-write; return (exit status, stderr)."""
    env = {**os.environ, "PAUSE_AT": where}
    process = subprocess.Popen([sys.executable, "-c", PRELUDE, *map(str, args), "-o", str(output), *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert line.strip() == "PAUSED", process.stderr.read()
        assert output.parent.exists() and any(p.name.endswith(".part") for p in output.parent.iterdir())
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("command, sig", [(c, signal.SIGINT) for c in ("score", "export", "detect", "tile", "train")]
                         + [(c, signal.SIGTERM) for c in ("score", "export")])
def test_interrupt_mid_write_leaves_nothing(command, sig, commands):
    where, args, output = commands[command]
    status, stderr = interrupt(where, args, output, sig)
    assert status == (130 if sig == signal.SIGINT else 143), stderr
    word = "interrupted" if sig == signal.SIGINT else "terminated"
    assert stderr.strip().splitlines()[-1] == f"seamountae: {word}; the output being written was discarded"
    assert "Traceback" not in stderr
    # Training's checkpoint of its last epoch stays, for --resume; it was written whole before.
    assert leftovers(output.parent) == (["model.pt.ckpt"] if command == "train" else [])


@pytest.mark.parametrize("command", ["score", "detect"])
def test_kill_mid_write_leaves_nothing_under_the_final_name(command, commands):
    where, args, output = commands[command]
    status, _ = interrupt(where, args, output, signal.SIGKILL)
    assert status == -signal.SIGKILL
    assert not output.exists()
    assert all(name.startswith(f".{output.name}.") and name.endswith(".part") for name in leftovers(output.parent))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_overwrite_keeps_the_old_output_whole(sig, commands):
    where, args, output = commands["export"]
    output.write_text('{"old": true}\n')
    interrupt(where, args, output, sig, extra=["--overwrite"])
    assert output.read_text() == '{"old": true}\n'


def test_a_signal_whose_exception_was_swallowed_still_discards_the_output(tmp_path, monkeypatch):
    """A signal's exception raised inside a finaliser is ignored by Python; recorded, it still stops the commit."""
    from seamountae import outputs
    from seamountae.cli import Terminated

    monkeypatch.setattr(outputs, "_SIGNALLED", [])
    outputs.signalled(Terminated)
    with pytest.raises(Terminated):
        with outputs.atomic_output(tmp_path / "out.nc") as tmp:
            tmp.write_text("half")
    assert leftovers(tmp_path) == []
