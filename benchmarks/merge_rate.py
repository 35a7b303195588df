"""The SLURM array path's merge: `seamountae merge` of tile parts, in cells per second.

    python benchmarks/merge_rate.py            # 3000 × 3000 grid in 4 tiles (~3 min on 2 CPU cores)
    python benchmarks/merge_rate.py --side 6000 --tiles 8

A synthetic 15″-like grid (benchmarks/common.py's Terrain: rough floor, seamounts, holes) is
scored with the built-in model in `--tiles` parts (`score --tiles N --tile-index i`, as an array
task does), then the parts are merged. Each command runs as a child under /usr/bin/time, for its
seconds and peak RSS. Prints one JSON line: cells, per-tile and merge seconds and peak RSS, and
merge_cells_per_s (what the README's global projection divides the global grid by).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Terrain  # noqa: E402


def timed(*args: str) -> dict:
    """One seamountae command in a child: its wall seconds and peak RSS (GNU time's %M, in KB)."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "seamountae", *args, "-q"],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"seamountae {' '.join(args)} failed:\n{done.stderr}")
    return {"seconds": round(time.perf_counter() - start, 2),
            "peak_rss_mb": round(int(done.stderr.strip().splitlines()[-1]) / 1024)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=3000, help="cells on a side of the grid [3000]")
    parser.add_argument("--tiles", type=int, default=4, help="array tasks the grid is scored in [4]")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="merge_rate.") as tmp:
        grid = Path(tmp) / "grid.nc"
        Terrain(args.side, args.side, seed=1).write_netcdf(grid)
        parts = [Path(tmp) / f"part_{i}.nc" for i in range(args.tiles)]
        tiles = [timed("score", str(grid), "-o", str(part), "--tiles", str(args.tiles), "--tile-index", str(i))
                 for i, part in enumerate(parts)]
        merge = timed("merge", *map(str, parts), "-o", str(Path(tmp) / "score.nc"))
    cells = args.side * args.side
    print(json.dumps({"bench": "merge", "cells": cells, "tiles": tiles, "merge": merge,
                      "merge_cells_per_s": round(cells / merge["seconds"])}))


if __name__ == "__main__":
    main()
