"""Detect and export at scale: peak memory and time against grid size, and the streamed catalogue against in-memory detect.

    python benchmarks/detect_scale.py                          # full run: 5000², 10000², 20000² (~30 min on 2 cores,
                                                               #   export of 20000² excepted: see --export-timeout)
    python benchmarks/detect_scale.py --quick                  # smoke run: 1000², 2000², 4000² (~1 min)
    python benchmarks/detect_scale.py --export-timeout 300     # give up on an export after 5 minutes
    python benchmarks/detect_scale.py --base-score SCORE.nc    # tile a score file of your own (projected)

The target: detect on a 20,000 × 20,000 score file in at most 1 GB of peak RSS, in time linear in
cells (4× the cells within 1.2× of 4× the time), with the same catalogue as in-memory detect; and
export (catalogue + --footprints GeoJSON) measured the same way, for the README's projection of a
global 15″ score → detect → export.

How the score files are made. Scoring 20,000² cells takes ~20 min on 2 CPU cores, so one base grid
of B × B cells (`--base-cells`, default 5000; --quick 1000) is scored for real and then replicated:
1. The base grid is `seamountae.synth` (scenario fabric: abyssal hills, a ridge, a fracture zone,
   volcanic ridges and its planted seamounts) at 15″ centred on the equator, laid on projected x/y
   (World Mercator, EPSG:3395) with the synthetic frame's own cell sizes (~463 m): a projected grid
   has one cell size everywhere, so a copy of it is the same terrain anywhere (a geographic grid's
   copies would sit at other latitudes, where the same cells are other distances).
2. `seamountae score BASE -o score_1x1.nc --precision fp32` with the built-in model: real maps and
   a real judged candidates table. This file is the k = 1 size.
3. k × k copies (k = 2, 4: (2B)², (4B)² cells; each built just before its size runs and deleted after
   it, so one big file is on disk at a time) are written into a file laid out by the project's own
   scorefile.create_score_file (on a layout-only grid: np.broadcast_to, no memory), filled in blocks
   of rows (memory follows the block), with the candidates table replicated, its row/col offset and
   x/y taken from the big grid's coordinates, and added by scorefile.append_candidates. The file's
   attributes, variables and levels are checked against the base file's.

Each size is then run as `seamountae detect SCORE -o DET.nc` and `seamountae export DET.nc
-o CAT.geojson --footprints FP.geojson`, each in a fresh interpreter that runs the CLI in-process
and reports its own time and VmHWM (per address space: exact, unlike RUSAGE_CHILDREN, which a child
started by vfork is charged the parent's pages for). A command past its timeout is sent SIGTERM
(the CLI removes its partial output), and recorded as a timeout with the VmHWM it had reached.

JSON lines go to benchmarks/results/detect_scale.jsonl (--quick: detect_scale-quick.jsonl) and
stdout; a readable account to stderr:
  {"stage": "score", ...}     the real score of the base grid (context only): seconds, peak_rss_mb.
  {"stage": "build", ...}     one per tiled file: k, cells, seconds, file_mb, candidates, builder_peak_rss_mb
                               (this process's VmHWM so far: the base grid is synthesised in another).
  {"stage": "detect"|"export", ...}  one per size: k, grid, cells, status (ok | timeout; any other failure stops the run),
      seconds (the command in-process, after interpreter start-up and the import of the timed modules;
          the figure the ratios use),
      wall_seconds (the child, start-up included), peak_rss_mb (the child's VmHWM), seamounts,
      candidates, input_mb / output_mb, phases (seconds inside the library functions the command
      calls, by name, where they exist: e.g. detection.label_footprints, outputs.sha256 — nested
      calls are counted in each), and time_ratio: seconds ÷ (cells / previous cells × the previous
      size's seconds), 1 for exactly linear.
  {"stage": "equality", ...}  the k = 1 file: the streamed detections file against in-memory
      detection.detect() of the loaded score dataset: table_equal, labels_equal, same_catalogue;
      and count_ratio per tiled size: its seamounts ÷ (k² × the base's) (not 1 exactly: copies
      meet at seams, where NMS and footprints see the neighbouring copy's terrain).
  {"stage": "summary", ...}   the targets (peak RSS ≤ 1024 MB, each 4× step's time_ratio ≤ 1.2,
      same catalogue) and whether detect and export meet them; global_15s_projection_hours: the global
      15″ grid's ocean cells (86400 × 43200 × 0.71) at the largest size's seconds per cell, for each
      stage that finished there (assumes the measured per-cell rate holds: only as good as
      time_ratio says); total seconds and peak disk use of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import seamountae

CRS_EPSG = 3395  # WGS 84 / World Mercator: metres
ARCSEC = 15.0
GLOBAL_15S_OCEAN_CELLS = 86400 * 43200 * 0.71
TARGET_RSS_MB, TARGET_RATIO = 1024.0, 1.2
BLOCK_ROWS = 512  # rows per block when building tiled files: a multiple of lattice.CHUNK_ROWS
RESULTS = Path(__file__).resolve().parent / "results"

# Library functions timed inside the child, by "module:name". Each is wrapped wherever a seamountae
# module binds it (`from .x import f` copies the binding), so the timing survives refactors that move
# imports; a name the code no longer has is skipped.
PHASES = {
    "detect": ["seamountae.detection:select", "seamountae.detection:finish_table",
               "seamountae.detection:label_footprints", "seamountae.outputs:sha256", "seamountae.outputs:write_netcdf"],
    "export": ["seamountae.outputs:read_netcdf", "seamountae.export:footprint_polygons",
               "seamountae.catalogue:write_catalogue", "seamountae.catalogue:write_footprints", "seamountae.outputs:sha256"],
    "score": ["seamountae.scoring:judge_grid"],
}

CHILD = r"""
import importlib, json, sys, time
from collections import defaultdict
args, phases = json.loads(sys.argv[1]), json.loads(sys.argv[2])
from seamountae.cli import cli
spent = defaultdict(float)
def timed(name, f):
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            spent[name] += time.perf_counter() - t
    return wrapper
for spec in phases:
    module_name, name = spec.split(":")
    original = getattr(importlib.import_module(module_name), name, None)
    if original is None:
        continue
    wrapped = timed(spec.replace("seamountae.", ""), original)
    for module in [m for n, m in sys.modules.items() if n.startswith("seamountae") and m is not None]:
        for attr, value in list(vars(module).items()):
            if value is original:
                setattr(module, attr, wrapped)
start = time.perf_counter()
rc = cli.main(args, standalone_mode=False)
seconds = time.perf_counter() - start
if rc:
    sys.exit(rc)
hwm = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')]
print(json.dumps({'seconds': seconds, 'peak_rss_mb': hwm[0] / 1024, 'phases': {k: round(v, 3) for k, v in spent.items()}}))
"""


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def mb(path: Path) -> float:
    """Size of a file, or of a folder's files, in MB."""
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20
    return path.stat().st_size / 2**20 if path.exists() else 0.0


def vmhwm_mb(pid: int | str = "self") -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(l.split()[1]) / 1024 for l in status if l.startswith("VmHWM"))
    except (OSError, StopIteration):
        return None


# ------------------------------------------------------------------------------------ the child


def run_cli(args: list[str], stage: str, timeout: float | None) -> dict:
    """One seamountae command in a fresh interpreter: its status, own seconds, VmHWM and phases.

    A timeout is recorded (with the VmHWM reached, read from /proc before the child is stopped),
    not raised; any other failure raises with the child's stderr.
    """
    cmd = [sys.executable, "-c", CHILD, json.dumps([str(a) for a in args]), json.dumps(PHASES.get(stage, []))]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        peak = vmhwm_mb(child.pid)
        child.send_signal(signal.SIGTERM)  # the CLI unwinds and removes its partial output
        try:
            child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
        return {"status": "timeout", "timeout_s": timeout, "wall_seconds": round(time.perf_counter() - start, 1),
                "peak_rss_mb": round(peak, 1) if peak else None}
    wall = time.perf_counter() - start
    if child.returncode:
        raise RuntimeError(f"seamountae {' '.join(map(str, args))} failed (exit {child.returncode}):\n{err}")
    result = json.loads(out.strip().splitlines()[-1])
    return {"status": "ok", "seconds": round(result["seconds"], 3), "wall_seconds": round(wall, 3),
            "peak_rss_mb": round(result["peak_rss_mb"], 1), "phases": result["phases"]}


# ------------------------------------------------------------------------------------ the files


def write_base_grid(path: Path, side: int, seed: int) -> dict:
    """seamountae.synth's fabric scene, side × side cells of 15″ centred on the equator, on projected x/y."""
    from rasterio.crs import CRS

    from seamountae.geometry import KM_PER_DEGREE, km_per_degree_lon
    from seamountae.grid import canonical_grid, write_grid
    from seamountae.synth import synthesize

    step = ARCSEC / 3600
    lat0 = -(side - 1) * step / 2  # centred on the equator: the synthetic frame's cells are square
    synthetic, truth = synthesize(seed=seed, scenario="fabric", shape=(side, side), spacing_arcmin=ARCSEC / 60,
                                  origin=(-30.0, lat0))
    # The frame synth draws seamounts in (km east and north of the centre, at the central latitude's scale).
    dx_m = step * float(km_per_degree_lon(float(synthetic.y.mean()))) * 1000
    dy_m = step * KM_PER_DEGREE * 1000
    x = -4_000_000.0 + dx_m * np.arange(side)
    y = -2_000_000.0 + dy_m * np.arange(side)
    grid = canonical_grid(synthetic.values, x, y, False, CRS.from_epsg(CRS_EPSG).to_wkt(),
                          f"{synthetic.attrs['source']}, on projected x/y (EPSG:{CRS_EPSG})")
    del synthetic
    write_grid(grid, path)
    return {"planted_seamounts": len(truth), "cell_m": [round(dy_m, 2), round(dx_m, 2)], "synth_peak_rss_mb": round(vmhwm_mb(), 1)}


def write_base_grid_apart(path: Path, side: int, seed: int) -> dict:
    """write_base_grid in a process of its own: the whole synthetic grid (~75 bytes a cell while it is
    made) never counts towards this process's peak, which is then the builder's own."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(write_base_grid, path, side, seed).result()


# Global attributes a score file takes from its run, not from its layout.
RUN_ATTRS = ("seamountae_version", "history", "seamountae_parameters", "seamountae_inputs", "benchmark_tiled_from")


def build_tiled(base_path: Path, path: Path, k: int) -> dict:
    """A valid score file of k × k copies of `base_path`, written in blocks of rows; returns what it took."""
    import netCDF4

    from seamountae.evidence import candidates_from_dataset
    from seamountae.grid import from_cf_dataset
    from seamountae.lattice import CHUNK_ROWS
    from seamountae.scorefile import VARIABLES, append_candidates, create_score_file

    assert BLOCK_ROWS % CHUNK_ROWS == 0, "blocks must cover whole chunks, or chunks are rewritten"
    start = time.perf_counter()
    with xr.open_dataset(base_path, engine="netcdf4") as raw:
        base = from_cf_dataset(raw)
        if int(base.attrs.get("geographic", 0)):
            raise SystemExit(f"{base_path}: geographic; copies of a geographic grid at other latitudes are other "
                             "terrain, so tile a projected score file")
        x, y = base["x"].values, base["y"].values
        n = y.size
        if x.size != n:
            raise SystemExit(f"{base_path}: {n} x {x.size} cells; tile a square score file")
        if not (np.all(np.diff(x) > 0) and np.all(np.diff(y) > 0)):
            raise SystemExit(f"{base_path}: coordinates not ascending; the tiling assumes file rows are grid rows")
        table = candidates_from_dataset(base)
        base_attrs, levels = dict(base.attrs), base["level_km"].values
        var_attrs = {name: dict(base[name].attrs) for name in VARIABLES}
    dx, dy = (x[-1] - x[0]) / (n - 1), (y[-1] - y[0]) / (n - 1)
    big_x, big_y = x[0] + dx * np.arange(k * n), y[0] + dy * np.arange(k * n)
    # A base grid of regular cells is its own first copy, to rounding.
    assert np.abs(big_x[:n] - x).max() <= 1e-6 * abs(dx) and np.abs(big_y[:n] - y).max() <= 1e-6 * abs(dy)
    layout = xr.DataArray(np.broadcast_to(np.float32(np.nan), (k * n, k * n)), dims=("y", "x"),
                          coords={"y": big_y, "x": big_x}, name="elevation",
                          attrs={"units": "m", "geographic": 0, "crs": base_attrs["crs"], "source": str(base_path)})
    # What the score file's layout is made from: its model's metadata, as the base file records it.
    meta = {"patch_km": float(base_attrs["patch_km"]), "patch_px": int(base_attrs["patch_px"]),
            "pyramid": np.atleast_1d(base_attrs["pyramid"]).tolist(),
            "candidates": json.loads(base_attrs["candidate_rules"]),
            "threshold": {"value": float(base_attrs["threshold_auto"])}}
    carried = {key: base_attrs[key] for key in RUN_ATTRS if key in base_attrs}
    nc = create_score_file(path, layout, meta, int(base_attrs["stride_px"]),
                           {**carried, "benchmark_tiled_from": f"{k}x{k} copies of {base_path.name}"},
                           precision=str(base_attrs["precision"]))
    try:
        with netCDF4.Dataset(base_path) as src:
            src.set_auto_mask(False)  # NaN is the fill value: read values as stored
            for r0 in range(0, k * n, BLOCK_ROWS):
                r1 = min(r0 + BLOCK_ROWS, k * n)
                # Output rows r0..r1 are base rows r % n: one or two runs of them.
                pieces, r = [], r0
                while r < r1:
                    stop = min(r1, (r // n + 1) * n)
                    pieces.append(slice(r % n, (stop - 1) % n + 1))
                    r = stop
                for name in VARIABLES:
                    rows = np.concatenate([src[name][..., s, :] for s in pieces], axis=-2)
                    reps = (1,) * (rows.ndim - 1) + (k,)
                    nc[name][..., r0:r1, :] = np.tile(rows, reps)
    finally:
        nc.close()
    copies = []
    for i in range(k):
        for j in range(k):
            row, col = table["row"].to_numpy(np.int64) + i * n, table["col"].to_numpy(np.int64) + j * n
            copies.append(table.assign(row=row, col=col, x=big_x[col], y=big_y[row]))
    # In grid order, as evidence.judge_grid returns it.
    tiled = pd.concat(copies, ignore_index=True).sort_values(["row", "col"], kind="stable").reset_index(drop=True)
    append_candidates(path, tiled)
    check_tiled(path, base_path, k, n, base_attrs, levels, var_attrs, len(table))
    return {"seconds": round(time.perf_counter() - start, 1), "file_mb": round(mb(path), 1), "candidates": len(tiled)}


def check_tiled(path: Path, base_path: Path, k: int, n: int, base_attrs: dict, levels, var_attrs: dict, n_base: int) -> None:
    """The tiled file is a score file like the base: attributes, variables, levels, candidates, one copy's values."""
    from seamountae.grid import from_cf_dataset

    with xr.open_dataset(path, engine="netcdf4") as raw, xr.open_dataset(base_path, engine="netcdf4") as base_raw:
        big, base = from_cf_dataset(raw), from_cf_dataset(base_raw)
        layout = lambda attrs: {key: (v.tolist() if isinstance(v, np.ndarray) else v)
                                for key, v in attrs.items() if key not in RUN_ATTRS}
        problems = []
        if layout(big.attrs) != layout(base_attrs):
            problems.append(f"global attributes differ: {layout(big.attrs)} vs {layout(base_attrs)}")
        if set(big.data_vars) != set(base.data_vars):
            problems.append(f"variables differ: {sorted(set(big.data_vars) ^ set(base.data_vars))}")
        for name, attrs in var_attrs.items():
            if big[name].dims != base[name].dims or dict(big[name].attrs) != attrs:
                problems.append(f"{name}: dims or attributes differ")
        if big["elevation"].shape != (k * n, k * n) or not np.array_equal(big["level_km"].values, levels):
            problems.append("shape or levels differ")
        if big.sizes["candidate"] != k * k * n_base:
            problems.append(f"{big.sizes['candidate']} candidates, not {k * k} x {n_base}")
        # The last copy's first rows equal the base's first rows, in every variable.
        r0, c0 = (k - 1) * n, (k - 1) * n
        for name in var_attrs:
            a = big[name].isel(y=slice(r0, r0 + 64), x=slice(c0, c0 + n)).values
            b = base[name].isel(y=slice(0, 64)).values
            if not np.array_equal(a, b, equal_nan=True):
                problems.append(f"{name}: copy ({k - 1}, {k - 1}) differs from the base")
    if problems:
        raise SystemExit(f"{path}: not a faithful tiled score file:\n  " + "\n  ".join(problems))


def count_seamounts(det_path: Path) -> int:
    with xr.open_dataset(det_path, engine="netcdf4") as ds:
        return int(ds.sizes.get("seamount", 0))


def count_candidates(score_path: Path) -> int:
    with xr.open_dataset(score_path, engine="netcdf4") as ds:
        return int(ds.sizes.get("candidate", 0))


def count_features(path: Path) -> int:
    with open(path, encoding="utf-8") as handle:
        return len(json.load(handle)["features"])


def equality(score_path: Path, det_path: Path) -> dict:
    """The streamed detections file against detection.detect() of the score file loaded into memory."""
    from seamountae.detection import COLUMNS, EXTRA_COLUMNS, detect
    from seamountae.grid import from_cf_dataset
    from seamountae.outputs import read_netcdf

    scores = from_cf_dataset(read_netcdf(score_path, "score", "score"))
    table, labels = detect(scores)
    del scores
    with xr.open_dataset(det_path, engine="netcdf4") as raw:
        streamed = from_cf_dataset(raw.load())
    names = COLUMNS + EXTRA_COLUMNS + ["x", "y"]
    differing = [name for name in names
                 if not np.array_equal(streamed[f"seamount_{name}"].values, table[name].to_numpy(), equal_nan=True)]
    labels_equal = bool(np.array_equal(streamed["cluster"].values, labels))
    return {"seamounts_in_memory": len(table), "seamounts_streamed": int(streamed.sizes.get("seamount", 0)),
            "table_equal": not differing, "differing_columns": differing, "labels_equal": labels_equal,
            "same_catalogue": not differing and labels_equal}


# ------------------------------------------------------------------------------------------ main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small files (base 1000 x 1000), for a smoke run")
    parser.add_argument("--base-cells", type=int, default=None, help="side B of the base grid [5000; --quick 1000]")
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 2, 4], help="k of the k x k tiled sizes [1 2 4]")
    parser.add_argument("--base-score", type=Path, default=None,
                        help="tile this projected, square score file instead of scoring a synthetic grid")
    parser.add_argument("--seed", type=int, default=11, help="seed of the synthetic base grid")
    parser.add_argument("--detect-timeout", type=float, default=3600, help="seconds before a detect is given up [3600]")
    parser.add_argument("--export-timeout", type=float, default=1800, help="seconds before an export is given up [1800]")
    parser.add_argument("--no-export", action="store_true", help="measure detect only")
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the files [a new temporary folder in /tmp]")
    parser.add_argument("--keep", action="store_true", help="keep the files (default: deleted at the end)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON lines file [benchmarks/results/detect_scale.jsonl; --quick: detect_scale-quick.jsonl]")
    args = parser.parse_args(argv)
    side = args.base_cells or (1000 if args.quick else 5000)
    copies = sorted(set(args.copies))
    if copies[0] != 1:
        raise SystemExit("--copies must include 1: the base size is where the catalogue is compared")
    out_path = args.out or RESULTS / ("detect_scale-quick.jsonl" if args.quick else "detect_scale.jsonl")
    t_total = time.perf_counter()
    env = {"seamountae": seamountae.__version__, "python": platform.python_version(), "cpus": os.cpu_count(),
           "cpu": platform.processor() or platform.machine(), "host_memory_gb": round(
               os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("", encoding="utf-8")

    def emit(row: dict) -> None:
        # Written as it comes: a run that fails or is stopped keeps what it measured.
        line = json.dumps({"bench": "detect_scale", **row})
        print(line, flush=True)
        with open(out_path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="detect_scale.", dir="/tmp")) if temporary else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    made_here = ("grid_*.nc", "score_*x*.nc", "det_*x*.nc", "cat_*x*.geojson", "fp_*x*.geojson")
    log(f"detect_scale: files in {workdir}; {env}")
    peak_disk_mb = 0.0
    base_score_given = args.base_score.resolve() if args.base_score else None
    try:
        # 1. The base score file: scored for real (or given).
        if args.base_score:
            base_score = args.base_score.resolve()
            with xr.open_dataset(base_score) as ds:
                side = int(ds.sizes.get("y", 0))
            emit({"stage": "score", "source": str(base_score), "cells": side * side})
        else:
            grid_path, base_score = workdir / f"grid_{side}.nc", workdir / "score_1x1.nc"
            log(f"  base grid: synth fabric, {side}x{side} cells, projected")
            made = write_base_grid_apart(grid_path, side, args.seed)
            log("  scoring it: seamountae score (built-in model, fp32) in a child process")
            run = run_cli(["score", grid_path, "-o", base_score, "--precision", "fp32", "--overwrite", "-q"], "score", None)
            emit({"stage": "score", "grid": f"{side}x{side}", "cells": side * side, **made, **run,
                  "file_mb": round(mb(base_score), 1), "candidates": count_candidates(base_score)})
            log(f"  scored in {run['seconds']:.0f} s, peak RSS {run['peak_rss_mb']:.0f} MB, "
                f"{count_candidates(base_score)} candidates")
            grid_path.unlink()

        # 2. Each size: its tiled score file (built here, block by block, just before it is needed and
        # deleted after, so the disk holds one big file at a time), then detect and export, each in a
        # fresh interpreter.
        scores = {1: base_score}
        results = {"detect": {}, "export": {}}
        for k in copies:
            cells = (k * side) ** 2
            if k > 1:
                scores[k] = workdir / f"score_{k}x{k}.nc"
                log(f"  building {k}x{k} copies: {k * side}x{k * side} cells")
                built = build_tiled(base_score, scores[k], k)
                peak_disk_mb = max(peak_disk_mb, mb(workdir))
                # This process's VmHWM: the builder's (the synthetic grid was made in another process).
                emit({"stage": "build", "k": k, "grid": f"{k * side}x{k * side}", "cells": cells, **built,
                      "builder_peak_rss_mb": round(vmhwm_mb(), 1)})
                log(f"    {built['seconds']:.0f} s, {built['file_mb']:.0f} MB, {built['candidates']} candidates; "
                    f"builder's peak RSS so far {vmhwm_mb():.0f} MB")
            det, cat, fp = workdir / f"det_{k}x{k}.nc", workdir / f"cat_{k}x{k}.geojson", workdir / f"fp_{k}x{k}.geojson"
            stages = [("detect", ["detect", scores[k], "-o", det, "--overwrite", "-q"], args.detect_timeout)]
            if not args.no_export:
                stages.append(("export", ["export", det, "-o", cat, "--footprints", fp, "--overwrite", "-q"],
                               args.export_timeout))
            for stage, cli_args, timeout in stages:
                if stage == "export" and results["detect"][k]["status"] != "ok":
                    continue
                log(f"  {stage} {k * side}x{k * side} ...")
                run = run_cli(cli_args, stage, timeout)
                row = {"stage": stage, "k": k, "grid": f"{k * side}x{k * side}", "cells": cells, **run}
                if run["status"] == "ok":
                    if stage == "detect":
                        row.update(seamounts=count_seamounts(det), candidates=count_candidates(scores[k]),
                                   input_mb=round(mb(scores[k]), 1), output_mb=round(mb(det), 1))
                    else:
                        row.update(seamounts=count_features(cat), footprints=count_features(fp),
                                   input_mb=round(mb(det), 1), output_mb=round(mb(cat) + mb(fp), 1))
                    previous = [r for kk, r in results[stage].items() if kk < k and r["status"] == "ok"]
                    if previous:
                        prev = previous[-1]
                        row["time_ratio"] = round(run["seconds"] / (prev["seconds"] * cells / prev["cells"]), 3)
                        row["time_ratio_vs"] = prev["grid"]
                    log(f"    {run['seconds']:.1f} s, peak RSS {run['peak_rss_mb']:.0f} MB, {row['seamounts']} seamounts"
                        + (f", time ratio {row['time_ratio']}" if "time_ratio" in row else "") + f"; phases {run['phases']}")
                else:
                    log(f"    timed out after {timeout:.0f} s (peak RSS by then {run['peak_rss_mb']} MB)")
                results[stage][k] = row
                peak_disk_mb = max(peak_disk_mb, mb(workdir))
                emit(row)
            if k > 1 and not args.keep:  # the big score file is done with: free the disk for the next
                scores[k].unlink()

        # 3. The same catalogue: streamed file against in-memory detect, on the base size.
        log("  equality: the base size's detections file against in-memory detect()")
        same = equality(base_score, workdir / "det_1x1.nc")
        base_count = results["detect"][1]["seamounts"]
        same["count_ratio"] = {f"{k}x{k}": round(r["seamounts"] / (k * k * base_count), 4)
                               for k, r in results["detect"].items() if k > 1 and r["status"] == "ok"}
        emit({"stage": "equality", "grid": f"{side}x{side}", **same})
        log(f"    same catalogue: {same['same_catalogue']} ({same}); counts vs k² x base: {same['count_ratio']}")

        # 4. The targets.
        summary = {"stage": "summary", "base_cells": side, "copies": copies,
                   "targets": {"peak_rss_mb": TARGET_RSS_MB, "time_ratio": TARGET_RATIO, "same_catalogue": True}}
        for stage, rows in results.items():
            if not rows:
                continue
            done = [r for r in rows.values() if r["status"] == "ok"]
            largest = rows[max(rows)]
            peaks = [r["peak_rss_mb"] for r in rows.values() if r.get("peak_rss_mb") is not None]
            ratios = [r["time_ratio"] for r in done if "time_ratio" in r]
            summary[stage] = {
                "all_finished": len(done) == len(rows), "largest": largest["grid"], "largest_status": largest["status"],
                "largest_peak_rss_mb": largest.get("peak_rss_mb"), "max_peak_rss_mb": max(peaks) if peaks else None,
                "time_ratios": ratios,
                "rss_ok": len(done) == len(rows) and max(peaks) <= TARGET_RSS_MB,
                "linear_ok": len(done) == len(rows) and all(r <= TARGET_RATIO for r in ratios),
            }
            if largest["status"] == "ok":
                summary[stage]["global_15s_projection_hours"] = round(
                    largest["seconds"] / largest["cells"] * GLOBAL_15S_OCEAN_CELLS / 3600, 2)
        summary["same_catalogue"] = same["same_catalogue"]
        summary["detect_meets_target"] = bool(summary["detect"]["rss_ok"] and summary["detect"]["linear_ok"]
                                              and same["same_catalogue"])
        summary["total_seconds"] = round(time.perf_counter() - t_total, 1)
        summary["peak_disk_mb"] = round(peak_disk_mb, 1)
        summary.update(env)
        emit(summary)
        log(f"  detect: {summary['detect']}\n  export: {summary.get('export')}\n"
            f"  detect meets the target: {summary['detect_meets_target']}; total {summary['total_seconds']:.0f} s, "
            f"peak disk {peak_disk_mb / 1024:.1f} GB")
    finally:
        if args.keep:
            log(f"  files kept in {workdir}")
        elif temporary:
            shutil.rmtree(workdir, ignore_errors=True)
        else:  # a folder of the user's: only the files this run makes
            for pattern in made_here:
                for path in workdir.glob(pattern):
                    if path != base_score_given:
                        path.unlink()
    log(f"  wrote {out_path}")
    if not summary["same_catalogue"]:
        raise SystemExit("the streamed catalogue differs from in-memory detect")


if __name__ == "__main__":
    main()
