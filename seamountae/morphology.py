"""Measuring edifices on the grid: candidate summits, height above their surroundings, footprint,
basal radius, and their shape at their own scale.

Used by `tile` (to size each training patch to its seamount and to describe the training grid's
candidates) and by `detect` (to describe what it found), so training and detection see seamounts
the same way.

Layer 3, arithmetic: imports layers 1-3 only.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
import torch

# Directions (sectors of the circle) of the radial profiles that measure an edifice.
N_RAYS = 16  # a power of two (_sectors)
# A ray closes where its profile drops below base + CLOSURE_LEVEL × height.
CLOSURE_LEVEL = 0.4
# The basal radius is twice the median distance at which the profiles fall to half the height: a
# cone's basal radius exactly, within 30 % for domes and Gaussians, and unlike a footprint traced
# round the edifice, it does not leak along the ridges and plateaus a real seamount stands on.
HALF_HEIGHT_TO_BASE = 2.0
# The footprint: cells connected to the summit above base + FOOTPRINT_LEVEL × height, no farther
# than FOOTPRINT_REACH basal radii.
FOOTPRINT_LEVEL, FOOTPRINT_REACH = 0.1, 1.5
# The edifice's centre: the centroid of its top, the cells connected to the summit above base +
# TOP_LEVEL × height within one basal radius. A cone's centre is its summit; a guyot's or an atoll's
# is the middle of its flat top or lagoon, a caldera's the middle of its rim, wherever on the rim
# (or, of a flat top, in whichever corner) the cell reported as the summit lies.
TOP_LEVEL = 0.8
# A missing area is land, not a gap in the data, when its shallowest neighbouring cell lies within
# COAST_M of sea level: a coast is shallow, while the edge of a survey gap lies at the depth around
# it (on the project's real grids the two are apart by two orders of magnitude: within 32 m against
# more than 700 m).
COAST_M = 100.0


def max_basal_radius_km(window_km: float) -> float:
    """The largest basal radius `measure` reports in a window `window_km` wide: every direction
    that never falls to half height counts as half the window."""
    return HALF_HEIGHT_TO_BASE * 0.5 * window_km


def _window(elevation, row, col, dy_km, dx_km, window_km):
    """The cells within half `window_km` of (row, col): values, local summit index, north and east km."""
    ry, rx = int(math.ceil(0.5 * window_km / dy_km)), int(math.ceil(0.5 * window_km / dx_km))
    r0, c0 = max(row - ry, 0), max(col - rx, 0)
    win = elevation[r0 : row + ry + 1, c0 : col + rx + 1]
    north = (np.arange(win.shape[0])[:, None] + r0 - row) * dy_km
    east = (np.arange(win.shape[1])[None, :] + c0 - col) * dx_km
    return win, row - r0, col - c0, north, east


def _rays(win, r, c, dy_km, dx_km, reach_km):
    """Profiles (N_RAYS, n) along N_RAYS directions from the summit, sampled every cell width, and
    their distances (km)."""
    step = min(dy_km, dx_km)
    distance = np.arange(1, max(1, int(reach_km / step)) + 1) * step
    angle = np.arange(N_RAYS) * (2 * np.pi / N_RAYS)
    rows = np.rint(r + np.outer(np.cos(angle), distance) / dy_km).astype(int)
    cols = np.rint(c + np.outer(np.sin(angle), distance) / dx_km).astype(int)
    on = (rows >= 0) & (rows < win.shape[0]) & (cols >= 0) & (cols < win.shape[1])
    return np.where(on, win[np.clip(rows, 0, win.shape[0] - 1), np.clip(cols, 0, win.shape[1] - 1)], np.nan), distance


def _sectors(win, north, east, dist, dy_km, dx_km, reach_km):
    """Like `_rays`, but each profile holds the highest ground of its sector (1/N_RAYS of the circle)
    at each distance, from every cell of the window (`_window`'s north and east km of each cell,
    and their distance): a ridge crest narrower than the gap between two rays still shows in the
    direction it runs. NaN where a sector has no valid cell."""
    step = min(dy_km, dx_km)
    n = max(1, int(reach_km / step))
    ring = np.rint(dist / step).astype(np.int32)  # distance k·step → ring k, column k − 1
    use = np.isfinite(win) & (ring >= 1) & (ring <= n)
    # Directions of the cells used only (not the corners beyond the reach), in 32-bit integers, and
    # the sector modulo N_RAYS (a power of two) as a bit mask: these passes over the window's cells
    # are most of the measurement's time.
    angle = np.arctan2(np.broadcast_to(east, win.shape)[use], np.broadcast_to(north, win.shape)[use])
    sector = np.rint(angle / (2 * np.pi / N_RAYS)).astype(np.int32) & (N_RAYS - 1)
    # The maximum of each (sector, distance) bin in one pass (torch's scatter maximum: several times
    # faster than sorting the cells by bin or np.maximum.at).
    bins = torch.from_numpy((sector * n + ring[use] - 1).astype(np.int64))
    values = torch.from_numpy(win[use].astype(np.float64))
    profile = torch.full((N_RAYS * n,), -torch.inf, dtype=torch.float64)
    profile = profile.scatter_reduce_(0, bins, values, "amax").numpy()
    profile[np.isneginf(profile)] = np.nan
    return profile.reshape(N_RAYS, n), np.arange(1, n + 1) * step


def _first_below(profile, distance, top, level, beyond):
    """Per profile: the distance at which it first falls below `level`, interpolated between the
    samples either side (the summit, `top`, at 0); `beyond` where it never does."""
    with np.errstate(invalid="ignore"):
        below = profile < level
    first = np.argmax(below, axis=1)
    rows = np.arange(len(profile))
    before = np.where(first > 0, profile[rows, np.maximum(first - 1, 0)], top)
    after = profile[rows, first]
    start = np.where(first > 0, distance[np.maximum(first - 1, 0)], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        part = np.clip(np.where(before > after, (before - level) / (before - after), 0.0), 0.0, 1.0)
    return np.where(below.any(axis=1), start + part * (distance[first] - start), beyond)


def _scale(win, r, c, north, east, dy_km, dx_km, window_km) -> tuple[float, float, float]:
    """`measure`'s base_m, height_m and basal_radius_km (NaN where it has none), all that the choice
    of a candidate's own window needs. The ring is chosen by squared distance, one pass over the
    window cheaper than its distances."""
    d2 = north * north + east * east
    ring = win[(d2 >= (0.4 * window_km) ** 2) & (d2 <= (0.5 * window_km) ** 2)]
    ring = ring[np.isfinite(ring)]
    if ring.size == 0 or not np.isfinite(win[r, c]):
        return math.nan, math.nan, math.nan
    base = float(np.median(ring))
    top = float(win[r, c])
    if not top - base > 0:
        return base, top - base, math.nan
    profile, distance = _rays(win, r, c, dy_km, dx_km, 0.5 * window_km)
    radius = HALF_HEIGHT_TO_BASE * float(np.median(_first_below(profile, distance, top, base + 0.5 * (top - base), 0.5 * window_km)))
    return base, top - base, radius


def _window_scale(elevation, row, col, dy_km, dx_km, window_km) -> tuple[float, float, float]:
    """`_scale` of the window `window_km` wide around (row, col)."""
    win, r, c, north, east = _window(elevation, row, col, dy_km, dx_km, window_km)
    return _scale(win, r, c, north, east, dy_km, dx_km, window_km)


def measure(elevation: np.ndarray, row: int, col: int, dy_km: float, dx_km: float, window_km: float,
            scale: tuple[float, float, float] | None = None) -> dict:
    """Height, basal radius, shape and footprint of the edifice whose summit is cell (row, col),
    in a window `window_km` wide.

    - base_m: the median of a ring 0.4–0.5 `window_km` from the summit; height_m: summit − base;
    - basal_radius_km: HALF_HEIGHT_TO_BASE × the median over N_RAYS directions of the distance at
      which the profile first falls below base + height / 2 (a direction that never does counts
      as half the window);
    - closure: the fraction of sectors (`_sectors`) whose ground falls below base + CLOSURE_LEVEL ×
      height inside the window (1 for an isolated edifice; a ridge crest stays high along its strike);
    - elongation: 1 − minor/major axis of the sectors' half-height outline, from its second moments;
    - area_km2: the footprint (FOOTPRINT_LEVEL, FOOTPRINT_REACH);
    - missing_km: how far the nearest missing cell (land, gap) in the window lies from the summit;
    - centre_rows, centre_cols: the edifice's centre (TOP_LEVEL), in cells from the summit.

    scale: `_scale` of this window where the caller has it already (describe).
    """
    nan = {"base_m": np.nan, "height_m": np.nan, "area_km2": np.nan, "basal_radius_km": np.nan, "closure": np.nan,
           "elongation": np.nan, "missing_km": 0.0, "centre_rows": 0.0, "centre_cols": 0.0}
    win, r, c, north, east = _window(elevation, row, col, dy_km, dx_km, window_km)
    base, height, radius = scale or _scale(win, r, c, north, east, dy_km, dx_km, window_km)
    if not np.isfinite(base):
        return nan
    found = {**nan, "base_m": base, "height_m": height, "missing_km": _missing_km(win, north, east)}
    if not height > 0:
        return found
    top, half_height = float(win[r, c]), base + 0.5 * height
    found["basal_radius_km"] = radius
    dist = np.hypot(north, east)
    # The shape from the highest ground of each sector, so that narrow crests count.
    sectors, distance = _sectors(win, north, east, dist, dy_km, dx_km, 0.5 * window_km)
    with np.errstate(invalid="ignore"):
        found["closure"] = float(np.mean((sectors <= base + CLOSURE_LEVEL * height).any(axis=1)))
    half = _first_below(sectors, distance, top, half_height, 0.5 * window_km)
    angle = np.arange(N_RAYS) * (2 * np.pi / N_RAYS)
    outline = np.column_stack([half * np.cos(angle), half * np.sin(angle)])
    eig = np.linalg.eigvalsh(outline.T @ outline / N_RAYS + np.eye(2) * 1e-9)
    found["elongation"] = float(1 - math.sqrt(max(eig[0], 0.0) / eig[1]))
    found["area_km2"] = float(_footprint(win, r, c, dist, dy_km, dx_km, base, height, radius).sum()) * dy_km * dx_km
    reach = max(radius, dy_km, dx_km)
    rs, cs = _box(r, c, reach, dy_km, dx_km, win.shape)  # the top lies within `reach`: label that box only
    with np.errstate(invalid="ignore"):
        parts, _ = ndimage.label((win[rs, cs] >= base + TOP_LEVEL * height) & (dist[rs, cs] <= reach))
    rows, cols = np.nonzero(parts == parts[r - rs.start, c - cs.start])
    r0, c0 = rows.min(), cols.min()
    rows, cols = rows - r0, cols - c0  # in the top's bounding box
    top = np.zeros((rows.max() + 1, cols.max() + 1), bool)
    top[rows, cols] = True
    # Only a top that holds its centroid (in itself, or in a pit or lagoon it rings) has a centre: the
    # centroid of a crooked crest lies off the edifice, and there the summit is the better position.
    if _in_or_ringed(top, int(round(rows.mean())), int(round(cols.mean()))):
        found["centre_rows"] = float(rows.mean() + (r0 + rs.start) - r)
        found["centre_cols"] = float(cols.mean() + (c0 + cs.start) - c)
    return found


def _in_or_ringed(mask: np.ndarray, r: int, c: int) -> bool:
    """ndimage.binary_fill_holes(mask)[r, c], from one labelling of the rest: a cell outside `mask`
    is in a hole when its part of the rest (4-connected, as binary_fill_holes fills) touches no edge."""
    if mask[r, c]:
        return True
    rest, _ = ndimage.label(~mask)
    own = rest[r, c]
    return not (np.any(rest[0] == own) or np.any(rest[-1] == own) or np.any(rest[:, 0] == own)
                or np.any(rest[:, -1] == own))


def _missing_km(win, north, east) -> float:
    """How far the nearest missing cell of a window (`_window`) lies from its summit (inf: none)."""
    missing = ~np.isfinite(win)
    if not missing.any():
        return math.inf
    return float(np.hypot(np.broadcast_to(north, win.shape)[missing], np.broadcast_to(east, win.shape)[missing]).min())


def missing_km(elevation: np.ndarray, row: int, col: int, dy_km: float, dx_km: float, window_km: float) -> float:
    """`measure`'s missing_km, alone."""
    win, _, _, north, east = _window(elevation, row, col, dy_km, dx_km, window_km)
    return _missing_km(win, north, east)


def _box(r, c, reach_km, dy_km, dx_km, shape) -> tuple[slice, slice]:
    """The rows and columns of a window within `reach_km` of its cell (r, c) (all of it for a NaN reach)."""
    if not math.isfinite(reach_km):
        return slice(0, shape[0]), slice(0, shape[1])
    ry, rx = int(math.ceil(reach_km / dy_km)), int(math.ceil(reach_km / dx_km))
    return slice(max(r - ry, 0), min(r + ry + 1, shape[0])), slice(max(c - rx, 0), min(c + rx + 1, shape[1]))


def _footprint(win, r, c, dist, dy_km, dx_km, base, height, radius):
    """The cells connected to (r, c) above base + FOOTPRINT_LEVEL × height within FOOTPRINT_REACH ×
    radius (labelled in that box only: nothing beyond it can join), as a mask of the window."""
    rows, cols = _box(r, c, FOOTPRINT_REACH * radius, dy_km, dx_km, win.shape)
    with np.errstate(invalid="ignore"):
        above = (win[rows, cols] >= base + FOOTPRINT_LEVEL * height) & (dist[rows, cols] <= FOOTPRINT_REACH * radius)
    parts, _ = ndimage.label(above)
    mask = np.zeros(win.shape, bool)
    mask[rows, cols] = parts == parts[r - rows.start, c - cols.start]
    return mask


def footprint(elevation: np.ndarray, row: int, col: int, dy_km: float, dx_km: float, base_m: float, height_m: float,
              basal_radius_km: float) -> tuple[slice, slice, np.ndarray]:
    """The footprint `measure` found for the edifice at (row, col): (rows, cols, mask) of its window."""
    win, r, c, north, east = _window(elevation, row, col, dy_km, dx_km, 2 * FOOTPRINT_REACH * basal_radius_km)
    mask = _footprint(win, r, c, np.hypot(north, east), dy_km, dx_km, base_m, height_m, basal_radius_km)
    return slice(row - r, row - r + win.shape[0]), slice(col - c, col - c + win.shape[1]), mask


def describe(elevation: np.ndarray, row: int, col: int, dy_km: float, dx_km: float, first_window_km: float,
             min_window_km: float, max_window_km: float, radius_ratio: float) -> dict:
    """`measure` at the edifice's own scale: in a window `radius_ratio` basal radii wide (within the
    bounds; `first_window_km` with radius_ratio 0), found by measuring first in `first_window_km`,
    then in the window the radius found asks for, until the window settles (three times at most).
    The result carries `window_km`, the width used: the candidate's own patch width.
    """
    window, scale = settle(elevation, row, col, dy_km, dx_km, first_window_km, min_window_km, max_window_km, radius_ratio)
    return {**measure(elevation, row, col, dy_km, dx_km, window, scale), "window_km": window}


def settle(elevation: np.ndarray, row: int, col: int, dy_km: float, dx_km: float, first_window_km: float,
           min_window_km: float, max_window_km: float, radius_ratio: float) -> tuple[float, tuple[float, float, float]]:
    """`describe`'s window and, measured in it, the base_m, height_m and basal_radius_km: the window
    settles on the radius alone, so the rest can be measured once, in the window it settles on."""
    window = float(first_window_km)
    scale = _window_scale(elevation, row, col, dy_km, dx_km, window)
    for _ in range(3):
        if radius_ratio <= 0 or not np.isfinite(scale[2]):
            break
        wanted = float(np.clip(radius_ratio * scale[2], min_window_km, max_window_km))
        if abs(wanted - window) <= 0.05 * window:
            break
        window = wanted
        scale = _window_scale(elevation, row, col, dy_km, dx_km, window)
    return window, scale


SUMMIT_STRIP_ROWS = 256


def find_summits(elevation: np.ndarray, dy_km: float, dx_km: float, separation_km: float) -> np.ndarray:
    """(n, 2) rows and columns of local summits: cells highest within `separation_km`, highest first.

    Of the equal cells of a flat top, one within each `separation_km` (the first in row-major order);
    `secondary` tells the extra tops of a wide one. Missing cells are no summit and hide none.
    """
    ry, rx = max(1, int(round(separation_km / dy_km))), max(1, int(round(separation_km / dx_km)))
    yy, xx = np.ogrid[-ry : ry + 1, -rx : rx + 1]
    disc = np.hypot(yy * dy_km, xx * dx_km) <= max(separation_km, dy_km, dx_km)
    is_top = np.zeros(elevation.shape, bool)
    for a in range(0, len(elevation), SUMMIT_STRIP_ROWS):  # in strips with a halo: temporaries stay strip-sized
        lo, b = max(a - ry, 0), min(a + SUMMIT_STRIP_ROWS, len(elevation))
        strip = elevation[lo : min(b + ry, len(elevation))]
        valid = np.isfinite(strip)
        values = np.where(valid, strip, -np.inf)
        is_top[a:b] = ((values == _disc_maximum(values, disc)) & valid)[a - lo : b - lo]
    peaks = np.argwhere(is_top)
    top = elevation[peaks[:, 0], peaks[:, 1]]
    order = np.lexsort((peaks[:, 1], peaks[:, 0], -top))
    peaks, top = peaks[order], top[order]
    # Equal cells of one flat top: keep the first, drop the later ones within the separation. Only
    # tops that share their height take part, and each kept one asks for its own neighbours: a flat
    # floor of n cells costs n queries, not its n × (cells in a disc) pairs.
    keep = np.ones(len(peaks), bool)
    _, inverse, counts = np.unique(top, return_inverse=True, return_counts=True)
    shared = np.flatnonzero(counts[inverse] > 1)
    if shared.size:
        points = np.column_stack([peaks[shared, 0] * dy_km, peaks[shared, 1] * dx_km])
        tree = cKDTree(points)
        for k, i in enumerate(shared):
            if keep[i]:
                near = shared[tree.query_ball_point(points[k], separation_km)]
                keep[near[(near > i) & (top[near] == top[i])]] = False
    return peaks[keep]


def _disc_maximum(values: np.ndarray, disc: np.ndarray) -> np.ndarray:
    """ndimage.maximum_filter(values, footprint=disc, mode="constant", cval=-inf), exactly, for a
    footprint whose rows are runs centred on its middle column (a disc): for each run width, one
    running maximum along the rows, taken into every row offset that has that width. A few passes
    instead of one comparison per footprint cell per cell: ~5x faster for the discs candidates use."""
    ry = disc.shape[0] // 2
    out = np.full(values.shape, -np.inf, values.dtype)
    offsets_of_width: dict[int, list[int]] = {}
    for dy in range(-ry, ry + 1):
        width = int(disc[dy + ry].sum())
        if width and abs(dy) < len(values):  # rows of the box outside the disc, or beyond the array: none
            offsets_of_width.setdefault(width, []).append(dy)
    for width, offsets in offsets_of_width.items():
        run = ndimage.maximum_filter1d(values, width, axis=1, mode="constant", cval=-np.inf)
        for dy in offsets:  # out[r] takes the running maximum of row r + dy
            n = len(values) - abs(dy)
            target = out[max(-dy, 0) : max(-dy, 0) + n]
            np.maximum(target, run[max(dy, 0) : max(dy, 0) + n], out=target)
        del run
    return out


def secondary(elevation: np.ndarray, table, dy_km: float, dx_km: np.ndarray, prominence: float,
              own_m: float = math.inf) -> np.ndarray:
    """Which summits of `table` (row, col, summit_m, height_m, basal_radius_km; any order) are secondary
    tops of a higher one's edifice: the lowest ground on the straight line to a higher summit within
    their summed basal radii is less than `prominence` × its height below it (a guyot's flat top, a
    second top of one shield) and less than `own_m` (a cone that stands `own_m` above the ground
    joining it to its host is an edifice of its own, however tall the host: a flank cone).
    dx_km: km per column at each summit's row.
    """
    n = len(table)
    out = np.zeros(n, bool)
    if n < 2:
        return out
    row, col = table["row"].to_numpy(int), table["col"].to_numpy(int)
    top, height = table["summit_m"].to_numpy(float), table["height_m"].to_numpy(float)
    radius = table["basal_radius_km"].to_numpy(float)
    dx_km = np.broadcast_to(np.asarray(dx_km, float), (n,))
    # Candidate pairs on one east-west scale for every row, the smallest (so no pair is missed), then
    # each pair in km at its own latitude: absolute columns times each row's own scale would drift
    # far from the truth on a wide grid.
    tree = cKDTree(np.column_stack([row * dy_km, col * float(dx_km.min())]))
    for i, j in tree.query_pairs(2 * float(np.nanmax(radius))):
        lo, hi = (i, j) if (top[i], -i) < (top[j], -j) else (j, i)
        apart = np.hypot((row[i] - row[j]) * dy_km, (col[i] - col[j]) * 0.5 * (dx_km[i] + dx_km[j]))
        if apart > radius[i] + radius[j]:
            continue
        steps = int(max(abs(row[i] - row[j]), abs(col[i] - col[j]))) + 1
        rr = np.rint(np.linspace(row[lo], row[hi], steps + 1)).astype(int)
        cc = np.rint(np.linspace(col[lo], col[hi], steps + 1)).astype(int)
        col_m = np.nanmin(elevation[rr, cc])  # NaN (a gap) on the way: not proven the same edifice
        if np.isfinite(elevation[rr, cc]).all() and top[lo] - col_m < min(prominence * height[lo], own_m):
            out[lo] = True
    return out


def _land_areas(elevation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The missing areas of `elevation` (labels 1..n) and which of them are land (COAST_M), by label.

    Held to one label array and a few masks (a candidate tile is up to TILE_READ_CELLS): the coast
    cells are gathered, not the whole grid dilated."""
    missing = ~np.isfinite(elevation)
    labels, n = ndimage.label(missing)
    if not n:
        return labels, np.zeros(1, bool)
    # Each coast cell (valid, next to a missing one) takes the label of a missing neighbour (the
    # largest, where two areas meet).
    coast = ndimage.binary_dilation(missing, np.ones((3, 3), bool))
    coast &= ~missing
    rows, cols = np.nonzero(coast)
    del coast
    ny, nx = labels.shape
    neighbour = np.zeros(rows.size, labels.dtype)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            r, c = rows + dr, cols + dc
            inside = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
            np.maximum(neighbour, np.where(inside, labels[np.clip(r, 0, ny - 1), np.clip(c, 0, nx - 1)], 0), out=neighbour)
    # An area without a coast (it fills the array) reads as 0 m, as ndimage gives a label with no cells.
    shallowest = np.zeros(n + 1)
    if rows.size:
        has_coast = np.bincount(neighbour, minlength=n + 1) > 0
        shallowest[has_coast] = np.asarray(ndimage.maximum(elevation[rows, cols], neighbour,
                                                           np.flatnonzero(has_coast)))
    return labels, np.concatenate([[False], shallowest[1:] >= -COAST_M])


def land(elevation: np.ndarray) -> np.ndarray:
    """Where `elevation` is missing because of land (COAST_M), not because of a gap in the data."""
    labels, is_land = _land_areas(elevation)
    return is_land[labels]


def small_islands(elevation: np.ndarray, dy_km: float, dx_rows_km: np.ndarray, max_km2: float) -> np.ndarray:
    """The cells of land (`land`) in areas of at most `max_km2` (row areas from `dx_rows_km`, km per
    column of each row) that do not touch the array's edge (their size is unknown there): the
    islands that are the tops of seamounts."""
    labels, is_land = _land_areas(elevation)
    n = len(is_land) - 1
    if not n:
        return np.zeros(elevation.shape, bool)
    # Areas by label, strip by strip (a whole grid of per-cell areas would be 8 bytes a cell).
    cell_km2 = dy_km * np.asarray(dx_rows_km, float)
    area = np.zeros(n + 1)
    for a in range(0, labels.shape[0], 256):
        strip = labels[a : a + 256]
        area += np.bincount(strip.ravel(), np.repeat(cell_km2[a : a + 256], strip.shape[1]), minlength=n + 1)
    area = area[1:]
    edge = np.zeros(n + 1, bool)
    edge[np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))] = True
    return (is_land & np.concatenate([[False], area <= max_km2]) & ~edge)[labels]
