"""What a grid's terrain is like as a whole: statistics that tell bathymetry from noise, a constant, the wrong units.

Two numbers per grid, from a few windows spread over it (valid cells only):
- `lag1`: the lag-1 autocorrelation of the elevation, a plane removed per window, between cells
  adjacent along x and along y (their mean). Real bathymetry is smooth at its cell size (above 0.9);
  white noise is near 0, and a constant grid has none (NaN).
- `log_slope`: the natural log of the median absolute slope between adjacent cells, in m/km. Heights
  in km instead of m put it ln(1000) ≈ 6.9 lower.
`train` records the training grids' range in the model file; `score` warns where a grid's values
lie far outside it.

Layer 3, arithmetic: imports layers 1-3 only.
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import GridGeometry
from .grid import read_window

WINDOW_CELLS = 256  # a window's side: enough pairs of cells, little to read on any grid
WINDOWS = 3  # per side: 9 windows spread over the grid
LAG1_MARGIN = 0.3  # how far below the training grids' lowest lag-1 autocorrelation a grid may go
SLOPE_FACTOR = 10.0  # how many times steeper or flatter than the training grids a grid may be
DIGITS = 4  # a statistic for a warning: what the model file stores of it


def statistics(grid) -> dict | None:
    """{"lag1", "log_slope"} of a canonical grid (lazily opened or in memory), or None where it has
    too few valid neighbouring cells to say."""
    geometry = GridGeometry.of(grid)
    ny, nx = grid.shape
    products = {"xy": 0.0, "xx": 0.0, "yy": 0.0}
    slopes = []
    for r in np.linspace(0, max(ny - WINDOW_CELLS, 0), WINDOWS).astype(int):
        for c in np.linspace(0, max(nx - WINDOW_CELLS, 0), WINDOWS).astype(int):
            z = read_window(grid, r, min(r + WINDOW_CELLS, ny), c, min(c + WINDOW_CELLS, nx)).astype(np.float64)
            dy_km, dx_km = geometry.row_km(r + z.shape[0] // 2)
            ok = np.isfinite(z)
            if ok.sum() < 16:
                continue
            rows, cols = np.nonzero(ok)
            # A plane by the normal equations of three unknowns, summed in numpy's own order (no BLAS).
            design = np.stack([np.ones(rows.size), rows - rows.mean(), cols - cols.mean()])
            gram = np.array([[np.sum(a * b) for b in design] for a in design])
            rhs = np.array([np.sum(a * z[ok]) for a in design])
            plane = np.linalg.solve(gram + 1e-9 * np.eye(3), rhs)
            residual = np.full(z.shape, np.nan)
            residual[ok] = z[ok] - (plane[0] + plane[1] * (rows - rows.mean()) + plane[2] * (cols - cols.mean()))
            for a, b, km in ((residual[:, :-1], residual[:, 1:], float(np.mean(dx_km))),
                             (residual[:-1], residual[1:], float(dy_km))):
                pair = np.isfinite(a) & np.isfinite(b)
                if pair.any():
                    products["xy"] += float(np.sum(a[pair] * b[pair]))
                    products["xx"] += float(np.sum(a[pair] ** 2))
                    products["yy"] += float(np.sum(b[pair] ** 2))
                    slopes.append(np.abs(a[pair] - b[pair]) / km)
    if not slopes:
        return None
    denominator = math.sqrt(products["xx"] * products["yy"])
    lag1 = products["xy"] / denominator if denominator > 0 else math.nan
    slope = float(np.median(np.concatenate(slopes)))
    log_slope = math.log(slope) if slope > 0 else -math.inf
    return {"lag1": _kept(lag1), "log_slope": _kept(log_slope)}


def _kept(value: float) -> float:
    return float(f"{value:.{DIGITS}g}") if math.isfinite(value) else value


def training_range(grids: list[dict]) -> dict | None:
    """The model card's record of its training grids' terrain: each statistic's lowest and highest."""
    grids = [g for g in grids if g and math.isfinite(g["lag1"]) and math.isfinite(g["log_slope"])]
    if not grids:
        return None
    return {"statistic": "lag1: lag-1 autocorrelation of the plane-removed elevation between adjacent cells; "
                         "log_slope: ln of the median absolute slope between adjacent cells in m/km",
            "lag1": [min(g["lag1"] for g in grids), max(g["lag1"] for g in grids)],
            "log_slope": [min(g["log_slope"] for g in grids), max(g["log_slope"] for g in grids)],
            "n_grids": len(grids)}


def unusual(found: dict | None, trained: dict | None) -> str | None:
    """What is unusual about a grid's terrain against the model's training grids, with what to check; None if nothing."""
    if not found or not trained:
        return None
    lag1, log_slope = found["lag1"], found["log_slope"]
    low, high = (math.exp(v) for v in trained["log_slope"])
    seen = (f"the training grids' lag-1 autocorrelation {trained['lag1'][0]:.2f}–{trained['lag1'][1]:.2f}, "
            f"median slope {low:.3g}–{high:.3g} m/km")
    if not math.isfinite(log_slope) or not math.isfinite(lag1):
        return (f"its elevation is constant where it is valid ({seen}); it does not look like bathymetry: check "
                "the variable (--var) and its nodata")
    if lag1 < trained["lag1"][0] - LAG1_MARGIN:
        return (f"its elevation is hardly correlated from cell to cell (lag-1 autocorrelation {lag1:.2f}; {seen}), "
                "like noise, not bathymetry: check the variable (--var), and that the file is an elevation grid")
    slope = math.exp(log_slope)
    if slope < low / SLOPE_FACTOR or slope > high * SLOPE_FACTOR:
        side = "flatter" if slope < low else "steeper"
        return (f"its median slope, {slope:.3g} m/km, is over {SLOPE_FACTOR:g}x {side} than any training grid's "
                f"({seen}): check the heights' units (km instead of m?) and the cell size; the scores are not "
                "calibrated for it")
    return None
