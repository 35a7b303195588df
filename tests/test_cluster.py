"""Scoring beyond one process: SLURM-style tiles merged, and dask (a LocalCluster and a scheduler
address) give the single-piece score file, and detection across tile seams is unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from conftest import ok, run_cli
from seamountae import cluster, lattice, scorefile
from seamountae.detection import table_from_detections
from seamountae.geometry import KM_PER_DEGREE
from seamountae.parts import tile_rows

VARIABLES = ("elevation", "error", "score", "relief_m")
TILES = 4  # a border falls 4 rows (7 km) from a detected summit: the seam cuts that seamount


def assert_same_score_file(expected, actual, atol=1e-5, may_differ=("history",), same_chunks=True):
    with xr.open_dataset(expected) as a, xr.open_dataset(actual) as b:
        assert set(a.data_vars) == set(b.data_vars) and a.sizes == b.sizes
        for name in VARIABLES:
            x, y = a[name].values, b[name].values
            assert np.array_equal(np.isnan(x), np.isnan(y)), name
            assert np.nanmax(np.abs(x - y), initial=0.0) <= atol, name
        assert a["error"].encoding["chunksizes"] == b["error"].encoding["chunksizes"] or not same_chunks
        for coord in a.coords:
            np.testing.assert_array_equal(a[coord].values, b[coord].values)
        different = {k for k in a.attrs if not np.array_equal(a.attrs[k], b.attrs.get(k))}
        assert different <= set(may_differ), different  # the command line differs, the provenance does not


@pytest.fixture(scope="module")
def parts(tmp_path_factory, grid_file, model_file):
    folder = tmp_path_factory.mktemp("parts")
    paths = [folder / f"part{i}.nc" for i in range(TILES)]
    for i, path in enumerate(paths):
        ok(run_cli(["score", grid_file, "--model", model_file, "--device", "cpu", "-o", path,
                    "--tiles", TILES, "--tile-index", i]))
    return paths


def test_tiles_cover_the_rows_once_on_chunk_boundaries():
    for n_rows, tiles in ((120, 3), (1000, 7), (33, 2), (4096, 128)):
        strips = [tile_rows(n_rows, tiles, i, 32) for i in range(tiles)]
        assert strips[0].start == 0 and strips[-1].stop == n_rows
        assert all(a.stop == b.start for a, b in zip(strips, strips[1:]))
        assert all(s.start < s.stop and s.start % 32 == 0 for s in strips)


def test_tiles_merged_equal_the_single_piece_score(parts, tmp_path, score_file):
    merged = tmp_path / "merged.nc"
    ok(run_cli(["merge", *reversed(parts), "-o", merged]))  # any order
    assert_same_score_file(score_file, merged, atol=0.0)
    with xr.open_dataset(parts[1]) as part:
        assert part.attrs["seamountae_tile_index"] == 1 and 0 < part.sizes["lat"] < 120
        assert '"tile_index": 1' in part.attrs["seamountae_parameters"]
    assert not list(tmp_path.glob(".*"))


def test_detection_across_tile_seams_equals_single_piece(parts, tmp_path, score_file, detections_file, grid_file):
    merged, detections = tmp_path / "merged.nc", tmp_path / "detections.nc"
    ok(run_cli(["merge", *parts, "-o", merged]))
    ok(run_cli(["detect", merged, "-o", detections]))
    with xr.open_dataset(detections) as ds:
        found = table_from_detections(ds.load())
    with xr.open_dataset(detections_file) as ds:
        expected = table_from_detections(ds.load())
    pd.testing.assert_frame_equal(found, expected)
    # The seams really cut seamounts: some detected summit lies within its basal radius of a tile border.
    with xr.open_dataset(grid_file) as grid:
        lat = grid["lat"].values
    borders = [lat[tile_rows(lat.size, TILES, i, lattice.CHUNK_ROWS).start] for i in range(1, TILES)]
    gaps = np.min(np.abs(found["lat"].values[:, None] - np.asarray(borders)[None, :]), axis=1) * KM_PER_DEGREE
    assert (gaps < found["basal_radius_km"].values).any()


@pytest.mark.parametrize("problem, message", [
    ("missing", "tile 1 of 4 missing"),
    ("twice", "tile 0 again"),
    ("other run", "from another run"),
    ("not a part", "not a part of a tiled score"),
])
def test_merge_refuses_parts_that_do_not_make_one_run(problem, message, parts, tmp_path, grid_file, model_file, score_file):
    given = {"missing": [parts[0], *parts[2:]], "twice": [parts[0], *parts], "not a part": [*parts[:2], score_file]}.get(problem)
    if problem == "other run":
        other = tmp_path / "other.nc"
        ok(run_cli(["score", grid_file, "--model", model_file, "--device", "cpu", "--stride", "3", "-o", other,
                    "--tiles", TILES, "--tile-index", 2]))
        given = [*parts[:2], other]
    result = run_cli(["merge", *given, "-o", tmp_path / "out.nc"], catch_exceptions=True)
    assert result.exit_code == 1 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.nc").exists()


@pytest.mark.parametrize("args, message", [
    (["--tiles", "3"], "--tiles and --tile-index go together"),
    (["--tiles", "3", "--tile-index", "3"], "must be 0 .. 2"),
    (["--tiles", "50", "--tile-index", "0"], "at most 4 tiles"),
    (["--scheduler", "local:zero"], "must be empty, local:N (N ≥ 1)"),
])
def test_bad_tiling_and_scheduler_options(args, message, tmp_path, grid_file, model_file):
    result = run_cli(["score", grid_file, "--model", model_file, "-o", tmp_path / "s.nc", *args], catch_exceptions=True)
    assert result.exit_code == 1 and message in result.stderr and not (tmp_path / "s.nc").exists()


# ------------------------------------------------------------------------------------------ dask


def test_local_dask_cluster_equals_serial(tmp_path, grid_file, model_file, score_file, monkeypatch):
    monkeypatch.setattr(cluster, "BLOCK_CELLS", 40 * 64)  # many blocks, in rows and columns
    monkeypatch.setattr(cluster, "BLOCK_COLS", 64)
    monkeypatch.setattr(lattice, "CHUNK_COLS", 64)
    assert len(cluster.blocks(120, 160, slice(None), slice(None), lattice.CHUNK_ROWS, lattice.CHUNK_COLS)) == 12
    out = tmp_path / "dask.nc"
    ok(run_cli(["score", grid_file, "--model", model_file, "--device", "cpu", "-o", out, "--scheduler", "local:2"]))
    assert_same_score_file(score_file, out, same_chunks=False)  # narrower chunks, as patched above


def test_scheduler_from_the_config_file_is_not_part_of_the_provenance(tmp_path, grid_file, model_file, score_file):
    """[score] scheduler (what `seamountae run` uses too): where scoring ran does not change the file."""
    config = tmp_path / "cluster.toml"
    config.write_text('[score]\nscheduler = "local:2"\ndevice = "cpu"\n')
    out = tmp_path / "score.nc"
    ok(run_cli(["score", grid_file, "--model", model_file, "-o", out, "--config", config]))
    assert_same_score_file(score_file, out)  # the same recorded parameters as the in-process run
    config.write_text('[score]\nscheduler = "local"\n')
    bad = run_cli(["score", grid_file, "--model", model_file, "-o", tmp_path / "b.nc", "--config", config],
                  catch_exceptions=True)
    assert bad.exit_code == 1 and "scheduler" in bad.stderr and not (tmp_path / "b.nc").exists()


def test_existing_scheduler_address(tmp_path, grid_file, model_file, score_file):
    """What a batch script does: a scheduler and workers already running, seamountae given the address."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as running:
        out = tmp_path / "dask.nc"
        ok(run_cli(["score", grid_file, "--model", model_file, "--device", "cpu", "-o", out,
                    "--scheduler", running.scheduler_address, "--tiles", TILES, "--tile-index", 1]))
    with xr.open_dataset(out) as part, xr.open_dataset(score_file) as whole:
        rows = tile_rows(whole.sizes["lat"], TILES, 1, lattice.CHUNK_ROWS)
        np.testing.assert_allclose(part["error"].values, whole["error"].values[:, rows], atol=1e-5)


def test_unreachable_scheduler_is_one_line(tmp_path, grid_file, model_file, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    result = run_cli(["score", grid_file, "--model", model_file, "-o", tmp_path / "s.nc", "--scheduler",
                      "tcp://127.0.0.1:9"], catch_exceptions=True)
    assert result.exit_code == 1 and "cannot reach a dask scheduler" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "s.nc").exists()


def test_scheduler_without_dask_says_how_to_install(tmp_path, grid_file, model_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # as if the extra were not installed
    result = run_cli(["score", grid_file, "--model", model_file, "-o", tmp_path / "s.nc", "--scheduler", "local:2"],
                     catch_exceptions=True)
    assert result.exit_code == 1 and "pip install 'seamountae[dask]'" in result.stderr


# ---------------------------------------------------------------------------------- SLURM scripts

SLURM = Path(__file__).resolve().parent.parent / "configs" / "slurm"


def _script_env(tmp_path, **extra) -> dict:
    """The environment of a batch job: seamountae, dask and fake SLURM commands (sbatch, srun) on PATH."""
    fake = tmp_path / "fakebin"
    fake.mkdir(exist_ok=True)
    (fake / "srun").write_text('#!/bin/bash\nwhile [[ "$1" == --* ]]; do shift; done\nexec "$@"\n')
    (fake / "sbatch").write_text(f'#!/bin/bash\nprintf "%s\\n" "$@" >> {tmp_path}/sbatch.calls\necho 4242\n')
    for tool in fake.iterdir():
        tool.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{Path(sys.executable).parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    env.pop("SLURM_ARRAY_TASK_ID", None)
    return {**env, **{k: str(v) for k, v in extra.items()}}


@pytest.mark.parametrize("script", sorted(p.name for p in SLURM.glob("*.sh")))
def test_slurm_scripts_are_valid_bash_with_sbatch_headers(script):
    text = (SLURM / script).read_text()
    assert subprocess.run(["bash", "-n", SLURM / script]).returncode == 0
    assert text.startswith("#!/bin/bash") and "#SBATCH --time=" in text and "#SBATCH --job-name=" in text


def test_score_array_script_runs_as_a_job_array_and_merges(tmp_path, grid_file, model_file, score_file):
    out = tmp_path / "score"
    env = _script_env(tmp_path, GRID=grid_file, MODEL=model_file, OUT=out)
    submit = subprocess.run(["bash", SLURM / "score_array.sh"], env=env, capture_output=True, text=True)
    assert submit.returncode == 0, submit.stderr
    calls = (tmp_path / "sbatch.calls").read_text().splitlines()
    assert "--dependency=afterok:4242" in calls
    merge = next(c for c in calls if c.startswith("--wrap=")).removeprefix("--wrap=")
    for i in range(TILES):  # what SLURM does with the array, one task at a time
        task = subprocess.run(["bash", SLURM / "score_array.sh"], capture_output=True, text=True,
                              env={**env, "SLURM_ARRAY_TASK_ID": str(i), "SLURM_ARRAY_TASK_COUNT": str(TILES),
                                   "SLURM_CPUS_PER_TASK": "1"})
        assert task.returncode == 0, task.stderr
    done = subprocess.run(["bash", "-c", merge], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # The scripts leave --device at auto; the reference was scored with --device cpu: the same here.
    assert_same_score_file(score_file, f"{out}.nc", atol=0.0, may_differ=("history", "seamountae_parameters"))


def test_score_dask_script_runs_scheduler_workers_and_client(tmp_path, grid_file, model_file, score_file):
    out = tmp_path / "score.nc"
    env = _script_env(tmp_path, GRID=grid_file, MODEL=model_file, OUT=out, SLURM_JOB_ID=7, SLURM_NNODES=1,
                      SLURM_CPUS_PER_TASK=1, SCHEDULER_FILE=tmp_path / "scheduler.json")
    job = subprocess.run(["bash", SLURM / "score_dask.sh"], env=env, capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert job.returncode == 0, job.stderr[-2000:]
    assert_same_score_file(score_file, out, may_differ=("history", "seamountae_parameters"))
    assert not (tmp_path / "scheduler.json").exists()


# ------------------------------------------------------------------------------------------ Zarr


def _same_as_zarr(netcdf, store):
    with xr.open_dataset(netcdf) as a, xr.open_dataset(store, engine="zarr") as b:
        for name in VARIABLES:
            np.testing.assert_array_equal(a[name].values, b[name].values)
        assert b["error"].encoding["chunks"][1] == min(scorefile.ZARR_CHUNK_ROWS, b.sizes["lat"])
        # (netCDF gives a one-element attribute back as a scalar, Zarr as a list)
        assert {k for k in a.attrs if not np.array_equal(np.atleast_1d(a.attrs[k]), np.atleast_1d(b.attrs.get(k)))} <= {"history"}


def test_zarr_output_serial_and_on_dask_equals_netcdf_and_detects_the_same(tmp_path, grid_file, model_file, score_file,
                                                                          detections_file, monkeypatch):
    monkeypatch.setattr(cluster, "BLOCK_CELLS", 40 * 64)  # 4 blocks of rows, each written by a worker
    monkeypatch.setattr(scorefile, "ZARR_CHUNK_ROWS", 32)
    assert len(cluster.blocks(120, 160, slice(None), slice(None), scorefile.ZARR_CHUNK_ROWS, lattice.CHUNK_COLS)) == 4
    store = tmp_path / "score.zarr"
    ok(run_cli(["score", grid_file, "--model", model_file, "--device", "cpu", "-o", store]))
    _same_as_zarr(score_file, store)
    again = run_cli(["score", grid_file, "--model", model_file, "-o", store], catch_exceptions=True)
    assert again.exit_code == 1 and "--overwrite" in again.stderr
    ok(run_cli(["score", grid_file, "--model", model_file, "--device", "cpu", "-o", store, "--scheduler", "local:2",
                "--overwrite"]))
    _same_as_zarr(score_file, store)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["score.zarr"]  # no temporary store left beside it
    ok(run_cli(["detect", store, "-o", tmp_path / "detections.nc"]))
    with xr.open_dataset(tmp_path / "detections.nc") as a, xr.open_dataset(detections_file) as b:
        pd.testing.assert_frame_equal(table_from_detections(a.load()), table_from_detections(b.load()))


def test_tiles_are_netcdf_parts(tmp_path, grid_file, model_file):
    result = run_cli(["score", grid_file, "--model", model_file, "-o", tmp_path / "part.zarr", "--tiles", "2",
                      "--tile-index", "0"], catch_exceptions=True)
    assert result.exit_code == 1 and "seamountae merge" in result.stderr and not list(tmp_path.iterdir())


def test_zarr_without_zarr_installed_says_how_to_install(tmp_path, grid_file, model_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "zarr", None)  # as if the extra were not installed
    result = run_cli(["score", grid_file, "--model", model_file, "-o", tmp_path / "s.zarr"], catch_exceptions=True)
    assert result.exit_code == 1 and "pip install 'seamountae[dask]'" in result.stderr and not list(tmp_path.iterdir())
    (tmp_path / "old.zarr").mkdir()
    result = run_cli(["detect", tmp_path / "old.zarr", "-o", tmp_path / "d.nc"], catch_exceptions=True)
    assert result.exit_code == 1 and "pip install 'seamountae[dask]'" in result.stderr


def _kill_workers_after_first_block(monkeypatch, pids):
    """Kill these worker processes (SIGKILL, as the OOM killer or a cancelled job does) as soon as
    the client has the first block back, while other blocks are still running on them."""
    import signal

    received = lattice.progress_cells

    def killing(tiles, enabled, total):
        for i, item in enumerate(received(tiles, enabled, total)):
            if i == 0:
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
            yield item

    monkeypatch.setattr(lattice, "progress_cells", killing)


def _many_blocks(monkeypatch):
    monkeypatch.setattr(cluster, "BLOCK_CELLS", 40 * 64)  # 12 blocks: most still to come at the first
    monkeypatch.setattr(cluster, "BLOCK_COLS", 64)
    monkeypatch.setattr(lattice, "CHUNK_COLS", 64)


def test_a_worker_killed_mid_score_is_replaced_and_the_file_equals_the_serial_one(tmp_path, grid_file, model_file,
                                                                                   score_file, monkeypatch):
    from dask.distributed import Client, LocalCluster

    _many_blocks(monkeypatch)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as running:
        with Client(running) as probe:
            victim = next(iter(probe.run(os.getpid).values()))
        _kill_workers_after_first_block(monkeypatch, [victim])
        out = tmp_path / "dask.nc"
        ok(run_cli(["score", grid_file, "--model", model_file, "--device", "cpu", "-o", out,
                    "--scheduler", running.scheduler_address]))
        with Client(running) as probe:
            assert victim not in probe.run(os.getpid).values()  # it really died (its nanny started another)
    assert_same_score_file(score_file, out, same_chunks=False)


def test_a_score_the_cluster_cannot_finish_fails_in_one_line_and_leaves_nothing(tmp_path, grid_file, model_file,
                                                                                 monkeypatch):
    import dask
    from dask.distributed import Client, LocalCluster

    _many_blocks(monkeypatch)
    # No retry of a task whose worker died: the first death ends the run.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as running:
            with Client(running) as probe:
                _kill_workers_after_first_block(monkeypatch, list(probe.run(os.getpid).values()))
            result = run_cli(["score", grid_file, "--model", model_file, "--device", "cpu", "-o", tmp_path / "s.nc",
                              "--scheduler", running.scheduler_address], catch_exceptions=True)
    assert result.exit_code == 1, result.stderr
    assert "failed on the cluster" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no temporary file
