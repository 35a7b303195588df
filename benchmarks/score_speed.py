"""Scoring speed and memory: vectorised streaming score against a patch-at-a-time loop.

    python benchmarks/score_speed.py --json             # full run (~10 min on 2 CPU cores)
    python benchmarks/score_speed.py --json --quick     # smoke run: small grids
    python benchmarks/score_speed.py --grid FILE.nc     # stream a grid of your own instead
    python benchmarks/score_speed.py --json --device cuda   # the same measurements on a GPU
    python benchmarks/score_speed.py --json --precision fp32  # every measurement at one precision

Every measurement runs at one precision (`--precision`, default auto: what `score` picks on the
device), the reference loop and the forward pass alone included, so the ratios measure the
pipeline, not the arithmetic. On CUDA the batch size comes from free memory, windows are copied
from page-locked buffers without blocking (as `score` does there).

Prints JSON lines on stdout (a readable account goes to stderr):
  {"bench": "scaling", ...}   one line per square grid (1k², 2k², 4k² cells, in memory): cells/s, and
                               time ÷ (cells ÷ 2k² cells) × 2k² time — linear scaling keeps it near 1.
  {"bench": "score", ...}     the main line: the 6000 × 6000 float32 grid (or --grid) scored from netCDF
                               to netCDF by `seamountae score` in a child process:
      cells, patches, seconds (the command, without interpreter start-up), cells_per_s,
      candidate_seconds (its candidate pass, evidence.judge_grid) and map_seconds (the rest),
      candidates_vs_map (their ratio; target <= 0.5),
      peak_rss_mb (the child's peak resident memory: its VmHWM; rusage_children_mb is
          getrusage(RUSAGE_CHILDREN), taken while this process is still small, since a child
          started by vfork is charged this process's pages until it execs),
      speedup_vs_naive: seconds per patch of a reference that cuts (low-pass, scipy bilinear), normalises
          (patches.normalise_batch), scores (model) and measures (patches.relief_batch) one patch at a
          time in a Python loop, on the first `--naive-patches` patches of the same grid, same model,
          measured in this run, ÷ seconds per patch of the streaming run;
      efficiency: seconds of the network's forward pass alone over as many patches (the network
          PatchScorer evaluates, same batch size, real normalised patches from the same grid; the
          best of 5 rounds of `--model-batches` / 5 batches, scaled to the patch count: a forward's
          time does not depend on the values) ÷ seconds (the best of `--repeat` streamed runs);
      speedup_vs_naive_map, efficiency_map: the same two ratios with map_seconds for seconds;
      efficiency_in_memory: the same ratio for the largest scaling grid (score()'s map in memory, no I/O);
      max_abs_diff_vs_one_piece: streamed output against score() of the whole grid as one window;
      naive_max_abs_diff: reference against the vectorised lattice statistics on the same patches.
  {"bench": "projection", ...} the global 15″ grid (86400 × 43200 cells): its lattice's patch count
                               (ocean fraction 0.71) at the map's measured patches/s, plus the
                               candidate pass at the measured seconds per cell.

The model is an untrained PatchAutoencoder of the default architecture (32 px, width 16, latent 16)
with fabricated calibration errors: speed does not depend on the weights. Grids are synthetic
(rough floor, seamounts, a few holes), projected, with 463.3 m cells (15″ at the equator), so a
48 km patch is 104 cells wide and patch centres are 6.5 cells apart (stride 2).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import seamountae
from seamountae.candidates import CandidateRules
from seamountae.geometry import GridGeometry
from seamountae.grid import from_cf_dataset, open_grid, read_grid
from seamountae.config import PRECISIONS
from seamountae.model import PatchAutoencoder, artifact, in_precision, masked_error, resolve_precision
from seamountae.patches import MAX_NAN_FRACTION, bilinear, lowpass_sigma, lowpassed_window, normalise_batch, relief_batch
from seamountae.lattice import BandLattice, centre_stats, iter_levels, lattice_bands, lattice_window, pyramid_levels, resample_window
from seamountae.runner import OUTPUTS, PatchScorer
from seamountae.scorefile import score_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CELL_M, Terrain  # noqa: E402

PATCH_KM, PATCH_PX, STRIDE_PX = 48.0, 32, 2
GLOBAL_15S = (43200, 86400)
OCEAN_FRACTION = 0.71


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ the grids


def make_model(seed: int = 0):
    torch.manual_seed(seed)
    model = PatchAutoencoder(patch_px=PATCH_PX, latent=16, width=16).eval()
    # What `train` records, with made-up values: the candidates' rules are the defaults, their score
    # a combination of height alone (speed depends on neither).
    meta = {"patch_km": PATCH_KM, "patch_px": PATCH_PX,
            "calibration": {"errors": {p: np.linspace(0.05, 1.5, 200).tolist() for p in PRECISIONS}},
            "candidates": CandidateRules(patch_km=PATCH_KM).as_meta(),
            "combiner": {"names": ["log_height"], "mean": [6.5], "scale": [0.5], "coef": [1.0], "intercept": 0.0},
            "threshold": {"value": 0.5}, "latent_memory": {"mean": [0.0] * 16, "precision": np.eye(16).tolist()}}
    return model, meta


# ------------------------------------------------------------------------------------ measuring


def score_in_memory(grid, model, meta, device, batch_size, precision, window_cells=None):
    """What scoring.score's map does, with the scorer kept to count its patches."""
    scorer = PatchScorer(model, device, batch_size, precision)
    levels = pyramid_levels(grid, meta, STRIDE_PX)
    maps = {name: np.full((len(levels), *grid.shape), np.nan, np.float32) for name in OUTPUTS}
    start = time.perf_counter()
    for k, rows, cols, out in iter_levels(grid, scorer, meta, STRIDE_PX, window_cells):
        for name in OUTPUTS:
            maps[name][k, rows, cols] = out[name]
    ds = score_dataset(grid, maps, meta, STRIDE_PX, precision)
    return ds, time.perf_counter() - start, scorer


def naive_reference(grid, model, meta, device, precision, n_patches):
    """One patch at a time: cut (low-pass, scipy bilinear), normalise, forward, error and relief, in a Python loop.

    Takes the first lattice centres of the (single, projected) band, row by row, and returns their
    statistics with the lattice indices, the seconds per patch and a pool of normalised patches.
    """
    band = lattice_bands(grid, meta["patch_km"] / PATCH_PX)[0]
    dy_km = GridGeometry.of(grid).cell_size_km()[0]  # as iter_score takes it, to the last bit
    lat = BandLattice(band, meta["patch_km"] / PATCH_PX / dy_km, band.cols_per_px, STRIDE_PX, PATCH_PX)
    dev = torch.device(device)
    model = model.to(dev).for_inference()  # the function scoring evaluates (PatchScorer.network)
    n_k = int(math.floor((grid.shape[1] - 1) / lat.step_c)) + 2
    m_start = 3  # away from the south edge, where patches are mostly outside the grid
    half, offsets = PATCH_PX // 2, np.arange(PATCH_PX)
    sigma_r, sigma_c = float(lowpass_sigma(lat.sy, 1.0)), float(lowpass_sigma(lat.sx, 1.0))
    stats, pool = [], []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(n_patches):
            m, k = m_start + i // n_k, i % n_k
            rows = (m * STRIDE_PX - half + offsets + 0.5) * lat.sy
            cols = (k * STRIDE_PX - half + offsets + 0.5) * lat.sx
            r0, c0 = math.floor(rows[0]), math.floor(cols[0])  # the patch's cells, low-passed as the lattice's
            window = lowpassed_window(grid, r0, math.floor(rows[-1]) + 2, c0, math.floor(cols[-1]) + 2, sigma_r, sigma_c)
            rr, cc = np.meshgrid(rows - r0, cols - c0, indexing="ij")
            patch = torch.from_numpy(bilinear(window, rr, cc))[None].to(dev)
            x, valid, _ = normalise_batch(patch)
            usable = valid.mean() >= 1 - MAX_NAN_FRACTION
            if usable:
                with in_precision(dev, precision):  # the forward pass only, as PatchScorer runs it
                    recon = model(x[:, None])
                error = masked_error(recon.float(), x[:, None], valid[:, None])
                relief = relief_batch(patch)
                stats.append((m, k, float(error), float(relief)))
                if len(pool) < 4096:
                    pool.append(x)
            else:
                stats.append((m, k, math.nan, math.nan))
    seconds = time.perf_counter() - start
    return stats, seconds / n_patches, torch.cat(pool), lat


def naive_agreement(grid, lat, stats, model, device, precision):
    """Largest difference between the reference's statistics and the vectorised lattice statistics."""
    scorer = PatchScorer(model, device, "auto", precision)
    ms = [s[0] for s in stats]
    n_k = max(s[1] for s in stats) + 1
    window = resample_window(*lattice_window(grid, lat, min(ms), max(ms) + 1, 0, n_k, False), lat, scorer.device)
    fast = centre_stats(window, lat, scorer).cpu().numpy()
    diff = {"error": 0.0, "relief_m": 0.0}
    for m, k, error, relief in stats:
        for j, (name, value) in enumerate((("error", error), ("relief_m", relief))):
            other = fast[j, m - min(ms), k]
            if math.isnan(value) != math.isnan(other):
                diff[name] = math.inf
            elif not math.isnan(value):
                diff[name] = max(diff[name], float(abs(value - other)))
    return diff


def model_seconds(model, pool, device, precision, batch_size, n_patches, n_batches, rounds: int = 5):
    """Seconds of the forward pass alone for n_patches, timed on n_batches batches of real patches.

    The best of `rounds` rounds of n_batches / rounds batches: this machine's speed drifts (shared
    host), and the end-to-end runs it is compared with are best-of too.
    """
    dev = torch.device(device)
    model = model.to(dev).for_inference()  # as PatchScorer runs it
    pool = pool.to(dev)
    reps = math.ceil(batch_size / len(pool))
    batch = pool.repeat(reps, 1, 1)[:batch_size][:, None].contiguous()
    cuda = dev.type == "cuda"
    per_round = max(1, min(n_batches, math.ceil(n_patches / batch_size)) // rounds)
    best = math.inf
    with torch.inference_mode(), in_precision(dev, precision):  # as PatchScorer runs it
        model(batch)
        for _ in range(rounds):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(per_round):
                model(batch)
            if cuda:
                torch.cuda.synchronize()
            best = min(best, (time.perf_counter() - start) / (per_round * batch_size))
    return best * n_patches


def stream_in_child(grid_path, model_path, out_path, device, batch_size, precision, threads):
    """`seamountae score` in a fresh interpreter; returns its own timing (and, apart, the seconds of its
    candidate pass) and the children's peak RSS."""
    args = ["score", str(grid_path), "--model", str(model_path), "-o", str(out_path), "--device", device,
            "--batch-size", str(batch_size), "--precision", precision, "--overwrite", "-q"]
    if threads:
        args += ["--threads", str(threads)]
    code = (
        "import json, resource, sys, time\n"
        "from seamountae import scoring\n"
        "from seamountae.cli import cli\n"
        "judge_grid, spent = scoring.judge_grid, []\n"
        "def timed(*args, **kwargs):\n"
        "    t = time.perf_counter()\n"
        "    table = judge_grid(*args, **kwargs)\n"
        "    spent.append(time.perf_counter() - t)\n"
        "    return table\n"
        "scoring.judge_grid = timed\n"
        "start = time.perf_counter()\n"
        f"cli.main({args!r}, standalone_mode=False)\n"
        "seconds = time.perf_counter() - start\n"
        "hwm = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
        "print(json.dumps({'seconds': seconds, 'candidate_seconds': sum(spent), 'vmhwm_mb': hwm[0] / 1024 if hwm else None}))\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"seamountae score failed:\n{done.stderr}")
    child = json.loads(done.stdout.strip().splitlines()[-1])
    # ru_maxrss of a child started by vfork counts the parent's pages until exec, so it is only
    # meaningful while this process is small (the child runs first); the child's own high-water
    # mark (VmHWM, per address space) is exact and is the figure reported.
    child["rusage_children_mb"] = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    child["peak_rss_mb"] = child["vmhwm_mb"] or child["rusage_children_mb"]
    return child


def max_abs_diff(path, expected: xr.Dataset, strip: int = 512) -> dict:
    """Largest difference per variable between a score file and an in-memory score dataset, strip by strip."""
    out = {}
    with xr.open_dataset(path) as raw:
        ds = from_cf_dataset(raw)
        for name in ("elevation", "error", "score", "relief_m"):
            worst, nan_mismatch = 0.0, 0
            for r0 in range(0, expected.sizes["y"], strip):
                a = ds[name].isel(y=slice(r0, r0 + strip)).values
                b = expected[name].isel(y=slice(r0, r0 + strip)).values
                nan_mismatch += int((np.isnan(a) != np.isnan(b)).sum())
                worst = max(worst, float(np.nanmax(np.abs(a - b), initial=0.0)))
            out[name] = worst if not nan_mismatch else math.inf
    return out


def global_patches() -> int:
    """Patch centres of the global 15″ grid's lattice (all bands), computed from its geometry."""
    ny, nx = GLOBAL_15S
    step = 360.0 / nx
    y = -90 + step / 2 + step * np.arange(ny)
    x = -180 + step / 2 + step * np.arange(nx)
    grid = xr.DataArray(np.broadcast_to(np.float32(0), (ny, nx)), dims=("y", "x"), coords={"y": y, "x": x},
                        attrs={"geographic": 1, "crs": ""})
    px_km = PATCH_KM / PATCH_PX
    dy_km = step * 111.19492664455873
    total = 0
    for band in lattice_bands(grid, px_km):
        step_r, step_c = STRIDE_PX * px_km / dy_km, STRIDE_PX * band.cols_per_px
        n_m = math.floor((band.row1 - 1) / step_r) + 2 - math.floor(band.row0 / step_r)
        total += n_m * (math.floor((nx - 1) / step_c) + 2)
    return total


# ------------------------------------------------------------------------------------------ main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout")
    parser.add_argument("--quick", action="store_true", help="small grids, for a smoke run")
    parser.add_argument("--grid", help="stream this grid file instead of the synthetic 6000 x 6000 one")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="side of the scaling grids [1000 2000 4000]")
    parser.add_argument("--rss-size", type=int, default=None, help="side of the streamed grid [6000]")
    parser.add_argument("--naive-patches", type=int, default=None, help="patches for the reference loop [1500]")
    parser.add_argument("--model-batches", type=int, default=200, help="batches timed for the forward pass alone")
    parser.add_argument("--repeat", type=int, default=2, help="best of N for the streamed run and the scaling grids")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="auto", choices=("auto", *PRECISIONS),
                        help="forward-pass precision of every measurement (auto: what `score` picks on this device)")
    parser.add_argument("--batch-size", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's, all cores)")
    args = parser.parse_args(argv)
    sizes = args.sizes or ([256, 512, 1024] if args.quick else [1000, 2000, 4000])
    side = args.rss_size or (1000 if args.quick else 6000)
    n_naive = args.naive_patches or (300 if args.quick else 1500)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    batch_size = args.batch_size if args.batch_size == "auto" else int(args.batch_size)
    precision = resolve_precision(args.precision, torch.device(device))
    model, meta = make_model()
    env = {"device": device, "precision": precision, "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
           "torch": torch.__version__, "seamountae": seamountae.__version__,
           "model": "untrained PatchAutoencoder(32 px, width 16, latent 16)", "cell_m": CELL_M, "stride_px": STRIDE_PX}
    if device.startswith("cuda"):
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    log(f"score_speed: {env}")

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as folder:
        # 1. Streaming from netCDF to netCDF in a child process, first, while this process is small.
        folder = Path(folder)
        model_path = folder / "model.pt"
        torch.save(artifact(model, **meta), model_path)
        if args.grid:
            grid_path = Path(args.grid)
        else:
            grid_path = folder / f"grid_{side}.nc"
            log(f"  writing {side}x{side} grid to {grid_path}")
            Terrain(side, side, seed=7).write_netcdf(grid_path)
        out_path = folder / "score.nc"
        log("  streaming: seamountae score in a child process")
        child = min((stream_in_child(grid_path, model_path, out_path, device, args.batch_size, precision, args.threads)
                     for _ in range(args.repeat)), key=lambda run: run["seconds"])
        lazy = open_grid(grid_path)
        shape, cells = lazy.shape, lazy.size
        lazy.close()
        log(f"  streamed (best of {args.repeat}): {child['seconds']:.1f} s, {cells / child['seconds']:,.0f} cells/s, peak RSS {child['peak_rss_mb']:.0f} MB "
            f"(RUSAGE_CHILDREN {child['rusage_children_mb']:.0f} MB)")

        # 2. Linear scaling, in memory.
        scaling = []
        for n in sizes:
            grid = Terrain(n, n, seed=n).grid()
            best = None
            for _ in range(args.repeat):
                _, seconds, scorer = score_in_memory(grid, model, meta, device, batch_size, precision)
                best = seconds if best is None else min(best, seconds)
            row = {"bench": "scaling", "grid": f"{n}x{n}", "cells": n * n, "patches": scorer.patches_scored,
                   "seconds": round(best, 3), "cells_per_s": round(n * n / best),
                   "patches_per_s": round(scorer.patches_scored / best), "batch_size": scorer.batch_size}
            scaling.append((row, grid, scorer))
            log(f"  {n}x{n}: {best:.2f} s, {n * n / best:,.0f} cells/s, {scorer.patches_scored / best:,.0f} patches/s")
        ref_row = scaling[len(scaling) // 2][0]
        for row, _, _ in scaling:
            row["time_vs_linear"] = round(row["seconds"] / (ref_row["seconds"] * row["cells"] / ref_row["cells"]), 3)
            if args.json:
                print(json.dumps(row), flush=True)

        # 3. The reference loop, one patch at a time, on the middle grid; agreement with the vectorised lattice.
        mid_grid = scaling[len(scaling) // 2][1]
        stats, naive_s_per_patch, pool, lat = naive_reference(mid_grid, model, meta, device, precision, n_naive)
        agreement = naive_agreement(mid_grid, lat, stats, model, device, precision)
        log(f"  reference loop: {1 / naive_s_per_patch:,.0f} patches/s; max |diff| vs vectorised {agreement}")

        # 4. Forward pass alone: efficiency in memory on the largest scaling grid.
        big_row, big_grid, big_scorer = scaling[-1]
        model_big = model_seconds(model, pool, device, precision, big_scorer.batch_size, big_row["patches"], args.model_batches)
        efficiency_in_memory = model_big / big_row["seconds"]
        del big_grid, mid_grid
        scaling.clear()

        # 5. The streamed grid scored as one window, in memory, against the streamed output.
        log("  one piece: score() of the whole grid as one window, in this process")
        grid = read_grid(grid_path)
        whole, whole_seconds, scorer = score_in_memory(grid, model, meta, device, batch_size, precision, window_cells=1 << 40)
        del grid
        diffs = max_abs_diff(out_path, whole)
        del whole
    patches = scorer.patches_scored
    model_stream = model_seconds(model, pool, device, precision, scorer.batch_size, patches, args.model_batches)
    map_seconds = child["seconds"] - child["candidate_seconds"]
    main_row = {
        "bench": "score", "grid": f"{shape[0]}x{shape[1]}", "source": "netCDF -> netCDF (seamountae score)",
        "cells": cells, "patches": patches, "seconds": round(child["seconds"], 2),
        "cells_per_s": round(cells / child["seconds"]), "patches_per_s": round(patches / child["seconds"]),
        "peak_rss_mb": round(child["peak_rss_mb"], 1), "rusage_children_mb": round(child["rusage_children_mb"], 1),
        "speedup_vs_naive": round(naive_s_per_patch / (child["seconds"] / patches), 1),
        "efficiency": round(model_stream / child["seconds"], 3),
        # The same two ratios for the map alone: the command without its candidate pass (evidence.judge_grid).
        "candidate_seconds": round(child["candidate_seconds"], 2), "map_seconds": round(map_seconds, 2),
        "candidates_vs_map": round(child["candidate_seconds"] / map_seconds, 2),  # target <= 0.5
        "speedup_vs_naive_map": round(naive_s_per_patch / (map_seconds / patches), 1),
        "efficiency_map": round(model_stream / map_seconds, 3),
        "efficiency_in_memory": round(efficiency_in_memory, 3),
        "one_piece_seconds": round(whole_seconds, 2),
        "max_abs_diff_vs_one_piece": diffs,
        "naive_patches": n_naive, "naive_patches_per_s": round(1 / naive_s_per_patch, 1),
        "naive_max_abs_diff": agreement, "batch_size": scorer.batch_size, **env,
    }
    log(f"  speedup {main_row['speedup_vs_naive']}x, efficiency {main_row['efficiency']} "
        f"(in memory {main_row['efficiency_in_memory']}); map alone ({map_seconds:.1f} s of {child['seconds']:.1f} s): "
        f"speedup {main_row['speedup_vs_naive_map']}x, efficiency {main_row['efficiency_map']}; max |diff| vs one piece {diffs}")

    # 6. What that means for a global 15″ grid.
    n_global = global_patches()
    pps = patches / map_seconds
    n_cells = GLOBAL_15S[0] * GLOBAL_15S[1]
    map_hours = n_global * OCEAN_FRACTION / pps / 3600
    # The candidate pass at this grid's rate per cell (its summits per cell are a synthetic floor's).
    candidate_hours = child["candidate_seconds"] / cells * n_cells * OCEAN_FRACTION / 3600
    projection = {"bench": "projection", "grid": "global 15 arc-second, 86400x43200", "cells": n_cells,
                  "lattice_patches": n_global, "ocean_fraction": OCEAN_FRACTION, "patches_per_s": round(pps),
                  "map_hours": round(map_hours, 2), "candidate_hours": round(candidate_hours, 2),
                  "hours": round(map_hours + candidate_hours, 1), "device": device, "precision": precision,
                  "threads": env["threads"]}
    log(f"  global 15″: {n_global:,} lattice patches, ~{n_global * OCEAN_FRACTION:,.0f} at sea: map {map_hours:.2f} h at "
        f"{pps:,.0f} patches/s, candidates {candidate_hours:.2f} h")
    if args.json:
        print(json.dumps(main_row), flush=True)
        print(json.dumps(projection), flush=True)


if __name__ == "__main__":
    main()
