"""The score map's lattice changes scale and phase at every whole degree of latitude (1° bands):
how large is the jump in the error there, against the error's variation inside a band?

    python benchmarks/band_jump.py          # ~2 min on 2 CPU cores; JSON lines on stdout

A smooth synthetic sea floor at 58.5–61.5°N, 0–6°E (plane waves of 90–190 km, 150–400 m), scored
by the built-in model in fp32 at the grid's own spacing (1′ and 30″). Per pair of adjacent rows:
the largest and the median |Δ error| over the columns. Rows that straddle a band boundary (59°,
60°, 61°N) are compared with every pair inside a band.
"""

from __future__ import annotations

import json

import numpy as np

from seamountae import lattice
from seamountae.geometry import KM_PER_DEGREE
from seamountae.grid import canonical_grid
from seamountae.models import BUILTIN
from seamountae.model import read_model


def smooth_floor(step_deg: float):
    lat = np.arange(58.5 + step_deg / 2, 61.5, step_deg)
    lon = np.arange(step_deg / 2, 6.0, step_deg)
    lon2, lat2 = np.meshgrid(lon, lat)
    x_km, y_km = lon2 * KM_PER_DEGREE * np.cos(np.radians(lat2)), lat2 * KM_PER_DEGREE
    z = (-4000 + 400 * np.sin(2 * np.pi * x_km / 140) * np.cos(2 * np.pi * y_km / 190)
         + 150 * np.sin(2 * np.pi * (x_km + y_km) / 90))
    return canonical_grid(z.astype(np.float32), lon, lat, True, None, f"smooth floor at {step_deg * 3600:g}″")


def measure(step_deg: float, model, meta) -> dict:
    grid = smooth_floor(step_deg)
    error = np.full(grid.shape, np.nan, np.float32)
    for rows, cols, out in lattice.iter_score(grid, model, meta, stride_px=2, precision="fp32"):
        error[rows, cols] = out["error"]
    band = np.floor(grid.y.values / lattice.BAND_DEG).astype(int)
    step = np.abs(np.diff(error, axis=0))  # row r to row r + 1
    across = band[1:] != band[:-1]
    scored = np.isfinite(step).any(axis=1)  # not the edge rows, whose patches leave the grid
    step, across = step[scored], across[scored]
    row_max, row_median = np.nanmax(step, axis=1), np.nanmedian(step, axis=1)
    return {"bench": "band_jump", "grid": grid.attrs["source"], "rows": int(grid.shape[0]),
            "median_error": round(float(np.nanmedian(error)), 4),
            "across_boundary_max": [round(float(v), 4) for v in row_max[across]],
            "inside_max": round(float(row_max[~across].max()), 4),
            "inside_max_p90": round(float(np.percentile(row_max[~across], 90)), 4),
            "across_boundary_median": [round(float(v), 5) for v in row_median[across]],
            "inside_median_p90": round(float(np.percentile(row_median[~across], 90)), 5),
            "inside_median_max": round(float(row_median[~across].max()), 5)}


def main() -> None:
    model, meta = read_model(BUILTIN)
    for step_deg in (1 / 60, 1 / 120):
        print(json.dumps(measure(step_deg, model, meta)), flush=True)


if __name__ == "__main__":
    main()
