"""Scoring a found catalogue against a reference catalogue (benchmarks and `seamountae evaluate`).

Matching is one-to-one and nearest first, so one reference seamount can confirm at most one
detection, and a detection between two seamounts confirms the nearer one.

A census covers the globe and a search one grid: recall counts only the reference entries inside
the area searched (`grid`: its valid cells, the match distance in from missing cells and edges; or
a `region`). Entries outside it can still confirm a detection, so clipping never makes a found
seamount false.

Layer 5, stages: imports layers 1-5 only.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .geometry import EARTH_RADIUS_KM, GridGeometry, chord_km, haversine_km, in_region, unit_vectors
from .errors import SeamountaeError
from .config import ISLAND_MAX_KM2, MATCH_KM
from .grid import read_window
from .morphology import small_islands

MIN_RADIUS_TOLERANCE_KM = 3.0  # below ~2 grid cells a radius-based tolerance would reject honest picks


def _tolerances(reference, match_km, match_radius_factor, radius_column) -> np.ndarray:
    """Per-reference match tolerance in km."""
    if match_km is not None and match_radius_factor is not None:
        raise SeamountaeError("matching: give either --match-km or --match-radius-factor, not both")
    if match_radius_factor is None:
        match_km = MATCH_KM if match_km is None else float(match_km)
        if not match_km > 0:
            raise SeamountaeError(f"matching: --match-km must be positive, got {match_km:g}; give e.g. 10")
        return np.full(len(reference), match_km)
    if not float(match_radius_factor) > 0:
        raise SeamountaeError(
            f"matching: --match-radius-factor must be positive, got {match_radius_factor}; give e.g. 1"
        )
    if radius_column not in reference.columns:
        raise SeamountaeError(
            f"reference catalogue has no {radius_column!r} column, needed by --match-radius-factor; "
            "add it or use --match-km"
        )
    radius = pd.to_numeric(reference[radius_column], errors="coerce").to_numpy(dtype=float)
    # fmax ignores NaN, so an entry without a radius gets the floor rather than never matching.
    return np.fmax(float(match_radius_factor) * radius, MIN_RADIUS_TOLERANCE_KM)


# How far beyond a point's margin the searched-area rule looks to see a small island whole: the
# side of a square of ISLAND_MAX_KM2.
ISLAND_REACH_KM = math.sqrt(ISLAND_MAX_KM2)


def in_searched_grid(lon, lat, grid, margin_km) -> np.ndarray:
    """Which points lie on the grid's valid cells (not NaN: not land, not a gap) with every cell
    within `margin_km` of them (one value, or one per point) valid and on the grid: the area where
    a seamount could have been found and matched. The land of a small island (morphology.small_islands,
    unless the grid was read with islands off) counts as searched: it is the top of a seamount. Reads only a small window per point in the grid's
    box, so `grid` may be a lazily opened file (grid.open_grid)."""
    geometry = GridGeometry.of(grid)
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    margin = np.broadcast_to(np.asarray(margin_km, float), lon.shape)
    inside = np.zeros(lon.shape, bool)
    finite = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat))
    if not finite.size:
        return inside
    islands = bool(int(grid.attrs.get("islands", 1)))
    x, y = geometry.from_lonlat(lon[finite], lat[finite])
    row, col = geometry.index(x, y)
    on_grid = (row >= 0) & (row < geometry.ny) & (geometry.wraps | ((col >= 0) & (col < geometry.nx)))
    dy_km, dx_km = geometry.local_km(y)
    dy_km, dx_km = abs(dy_km), np.abs(dx_km)
    for k in np.flatnonzero(on_grid):
        m = margin[finite[k]]
        nr, nc = int(math.ceil(m / dy_km)), int(math.ceil(m / dx_km[k]))
        window = read_window(grid, row[k] - nr, row[k] + nr + 1, col[k] - nc, col[k] + nc + 1, geometry.wraps)
        dr, dc = np.ogrid[-nr : nr + 1, -nc : nc + 1]
        disc = (dr * dy_km) ** 2 + (dc * dx_km[k]) ** 2 <= m * m
        searched = np.isfinite(window)  # NaN also where the window leaves the grid
        if islands and not searched[disc].all():
            searched = _searched_with_islands(grid, geometry, row[k], col[k], nr, nc, dy_km, dx_km[k])
        inside[finite[k]] = bool(searched[disc].all())
    return inside


def _searched_with_islands(grid, geometry, row, col, nr, nc, dy_km, dx_km) -> np.ndarray:
    """The (2 nr + 1, 2 nc + 1) cells around (row, col) that were searched: valid cells, and the
    land of small islands (candidates.find_candidates takes them as seamount tops), told from a
    window ISLAND_REACH_KM wider so that an island is seen whole; one reaching beyond stays a gap."""
    er, ec = int(math.ceil(ISLAND_REACH_KM / dy_km)), int(math.ceil(ISLAND_REACH_KM / dx_km))
    wide = read_window(grid, row - nr - er, row + nr + er + 1, col - nc - ec, col + nc + ec + 1, geometry.wraps)
    searched = np.isfinite(wide) | small_islands(wide, dy_km, np.full(wide.shape[0], dx_km), ISLAND_MAX_KM2)
    return searched[er : er + 2 * nr + 1, ec : ec + 2 * nc + 1]


def _require_lonlat(table, name: str) -> None:
    """Matching is on the sphere: x/y of a projected CRS would be matched as degrees, so refuse them."""
    lon = pd.to_numeric(table["lon"], errors="coerce").to_numpy(float) if len(table) else np.zeros(0)
    lat = pd.to_numeric(table["lat"], errors="coerce").to_numpy(float) if len(table) else np.zeros(0)
    if np.any(np.abs(lat[np.isfinite(lat)]) > 90) or np.any(np.abs(lon[np.isfinite(lon)]) > 360):
        raise SeamountaeError(f"{name} catalogue: coordinates beyond ±90° latitude / ±360° longitude, so not lon/lat "
                              "degrees (projected x/y?); give it in lon/lat (reproject it to EPSG:4326)")


def match_catalogues(
    found, reference, match_km=None, match_radius_factor=None, radius_column="radius_km"
) -> pd.DataFrame:
    """One-to-one nearest-first pairs (found_index, reference_index, distance_km); indices are positional.

    A found seamount with an edifice centre (`centre_lon`, `centre_lat`, as detect reports) is at
    its summit or its centre, whichever is nearer: catalogues place a seamount at its peak (Yesson)
    or at the centre of its edifice (Kim & Wessel), and the two part on a crater's rim or a flat top.
    """
    for name, table in (("found", found), ("reference", reference)):
        _require_lonlat(table, name)
    tolerance = _tolerances(reference, match_km, match_radius_factor, radius_column)
    empty = pd.DataFrame({"found_index": pd.Series(dtype="int64"), "reference_index": pd.Series(dtype="int64"),
                          "distance_km": pd.Series(dtype="float64")})
    if not len(found) or not len(reference):
        return empty
    r_lon, r_lat = (reference[c].to_numpy(dtype=float) for c in ("lon", "lat"))
    positions = [("lon", "lat")] + ([("centre_lon", "centre_lat")] if {"centre_lon", "centre_lat"} <= set(found.columns) else [])
    parts = [_pairs(found[a].to_numpy(dtype=float), found[b].to_numpy(dtype=float), r_lon, r_lat, tolerance) for a, b in positions]
    fi, ri, distance = (np.concatenate(v) for v in zip(*parts))
    if not len(fi):
        return empty
    # Greedy on ascending distance (ties broken by index, for reproducible results).
    order = np.lexsort((ri, fi, distance))
    used_f, used_r, accepted = set(), set(), []
    for k in order:
        f, r = int(fi[k]), int(ri[k])
        if f not in used_f and r not in used_r:
            used_f.add(f)
            used_r.add(r)
            accepted.append(k)
    accepted = np.asarray(accepted, dtype=int)
    return pd.DataFrame(
        {"found_index": fi[accepted].astype("int64"), "reference_index": ri[accepted].astype("int64"),
         "distance_km": distance[accepted].astype("float64")}
    )


def _pairs(f_lon, f_lat, r_lon, r_lat, tolerance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (found, reference, km) pair within the reference's tolerance."""
    f_ok = np.flatnonzero(np.isfinite(f_lon) & np.isfinite(f_lat))
    r_ok = np.flatnonzero(np.isfinite(r_lon) & np.isfinite(r_lat))
    none = np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    if not f_ok.size or not r_ok.size:
        return none
    # Neighbours on the unit sphere: chord length is monotonic in arc length, and 3-D vectors make the
    # dateline and poles no special case. The tree keeps memory at O(pairs within tolerance), not O(n*m).
    max_chord = float(chord_km(tolerance[r_ok].max())) / EARTH_RADIUS_KM * (1 + 1e-9)
    found_tree = cKDTree(unit_vectors(f_lon[f_ok], f_lat[f_ok]))
    reference_tree = cKDTree(unit_vectors(r_lon[r_ok], r_lat[r_ok]))
    pairs = found_tree.sparse_distance_matrix(reference_tree, max_chord, output_type="ndarray")
    if not len(pairs):
        return none
    fi, ri = f_ok[pairs["i"]], r_ok[pairs["j"]]
    distance = haversine_km(f_lon[fi], f_lat[fi], r_lon[ri], r_lat[ri])
    keep = distance <= tolerance[ri]
    return fi[keep], ri[keep], distance[keep]


def _plain(value):
    """Cell to a JSON-safe scalar (NaN -> None)."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.integer, int)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    return value if isinstance(value, (str, bool)) else str(value)


def evaluate(
    found,
    reference,
    match_km=None,
    match_radius_factor=None,
    min_height_m=None,
    height_column=None,
    bands=(500, 1000, 1500, 2000),
    area_km2=None,
    grid=None,
    region=None,
) -> dict:
    """Precision, recall and F1 of `found` against `reference`, with recall by height band.

    Targets are reference entries with height >= min_height_m (all entries when it is None) inside
    the area searched: with `grid` (the searched grid, canonical, may be opened lazily) on its valid
    cells at least the match distance from missing cells and from its edges (in_searched_grid);
    with `region` (west, east, south, north) inside that box. Matching uses every reference entry,
    so a detection of a catalogued seamount below min_height_m, or just outside the area, is a true
    positive for precision without counting toward recall. Precision is a lower bound when the
    reference is incomplete: an uncatalogued seamount counts as a false detection.
    """
    if height_column is None:
        height_column = next((c for c in ("grid_relief_m", "height_m") if c in reference.columns), None)
    if height_column is not None and height_column not in reference.columns:
        raise SeamountaeError(f"reference catalogue has no {height_column!r} column; name an existing height column")
    if min_height_m is not None and height_column is None:
        raise SeamountaeError(
            "reference catalogue has no height column (grid_relief_m or height_m) for --min-height; "
            "add one or drop --min-height"
        )
    if area_km2 is not None and not area_km2 > 0:
        raise SeamountaeError(f"evaluation: area must be positive, got {area_km2}; check the region")

    matches = match_catalogues(found, reference, match_km, match_radius_factor)
    height = (
        pd.to_numeric(reference[height_column], errors="coerce").to_numpy(dtype=float)
        if height_column is not None
        else np.full(len(reference), np.nan)
    )
    inside = np.ones(len(reference), bool)
    if len(reference) and (region is not None or grid is not None):
        r_lon, r_lat = (pd.to_numeric(reference[c], errors="coerce").to_numpy(float) for c in ("lon", "lat"))
        if region is not None:
            inside &= in_region(r_lon, r_lat, region)
        if grid is not None:
            tolerance = _tolerances(reference, match_km, match_radius_factor, radius_column="radius_km")
            inside[inside] = in_searched_grid(r_lon[inside], r_lat[inside], grid, tolerance[inside])
    # NaN >= x is False, so entries without a height are never targets when a minimum is set.
    target = inside.copy() if min_height_m is None else inside & (height >= float(min_height_m))
    matched_ref = np.zeros(len(reference), bool)
    matched_ref[matches["reference_index"].to_numpy()] = True
    matched_found = np.zeros(len(found), bool)
    matched_found[matches["found_index"].to_numpy()] = True

    n_found, n_targets = len(found), int(target.sum())
    tp = int(matched_found.sum())
    matched_targets = int((matched_ref & target).sum())
    precision = tp / n_found if n_found else 0.0
    recall = matched_targets / n_targets if n_targets else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    # Each band counts every reference entry in its height range (not only targets), so bands below
    # min_height_m still show how small edifices fare.
    edges = [float(b) for b in bands] if height_column is not None else []
    by_height = []
    for k, low in enumerate(edges):
        high = edges[k + 1] if k + 1 < len(edges) else math.inf
        in_band = inside & (height >= low) & (height < high)
        n, hit = int(in_band.sum()), int((in_band & matched_ref).sum())
        label = f"{low:g}-{high:g}" if math.isfinite(high) else f"{low:g}+"
        by_height.append({"band": label, "n": n, "found": hit, "recall": hit / n if n else None})

    def rows(table, indices, extra):
        out = []
        for i in indices:
            row = table.iloc[int(i)]
            item = {"index": int(i), "lon": _plain(row["lon"]), "lat": _plain(row["lat"])}
            item.update({key: _plain(row[col]) for key, col in extra if col in table.columns})
            out.append(item)
        return out

    miss_extra = [("name", "name")] + ([("height", height_column)] if height_column else [])
    misses = rows(reference, np.flatnonzero(target & ~matched_ref), miss_extra)
    false_detections = rows(found, np.flatnonzero(~matched_found), [("id", "id")])

    fp = n_found - tp
    result = {
        "n_found": n_found,
        "n_reference": len(reference),
        "n_reference_inside": int(inside.sum()),
        "n_targets": n_targets,
        "true_positives": tp,
        "false_positives": fp,
        "matched_targets": matched_targets,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "recall_by_height": by_height,
        "misses": misses,
        "false_detections": false_detections,
        "parameters": {
            "match_km": None if match_radius_factor is not None else float(match_km or MATCH_KM),
            "match_radius_factor": None if match_radius_factor is None else float(match_radius_factor),
            "min_height_m": None if min_height_m is None else float(min_height_m),
            "height_column": height_column,
            "bands": edges,
            "area_km2": None if area_km2 is None else float(area_km2),
            "clipped_to": ("the searched grid" if grid is not None else None) if region is None else
                          "region " + "/".join(f"{v:g}" for v in region) + (" and the searched grid" if grid is not None else ""),
        },
    }
    if area_km2 is not None:
        result["false_per_10k_km2"] = fp / float(area_km2) * 1e4
    return result


def format_report(result) -> str:
    """A short text summary of an evaluate() result."""
    p = result["parameters"]
    tolerance = (
        f"within {p['match_km']:g} km" if p.get("match_km") is not None
        else f"within {p['match_radius_factor']:g} x radius (>= {MIN_RADIUS_TOLERANCE_KM:g} km)"
    )
    targets = (
        f"height >= {p['min_height_m']:g} m by {p['height_column']}" if p.get("min_height_m") is not None
        else "all entries"
    )
    clipped = p.get("clipped_to")
    where = (f"reference: {result['n_reference_inside']:,} of {result['n_reference']:,} entries inside {clipped}"
             + (f" ({p['match_km']:g} km in from its edges and gaps)" if "grid" in clipped and p.get("match_km") else "")
             if clipped else f"reference: {result['n_reference']:,} entries, not clipped to the area searched")
    lines = [
        where,
        f"found {result['n_found']}, targets {result['n_targets']} ({targets})",
        f"matched one-to-one {tolerance}: true positives {result['true_positives']}, "
        f"false positives {result['false_positives']}, matched targets {result['matched_targets']}",
        f"precision {result['precision']:.3f}  recall {result['recall']:.3f}  F1 {result['f1']:.3f}"
        "  (precision is a lower bound: uncatalogued seamounts count as false)",
    ]
    if "false_per_10k_km2" in result:
        lines.append(f"false detections per 10,000 km2: {result['false_per_10k_km2']:.2f}")
    if result["recall_by_height"]:
        lines.append(f"recall by height ({p['height_column']}, m):")
        lines.append(f"  {'band':<12}{'n':>6}{'found':>7}{'recall':>8}")
        for band in result["recall_by_height"]:
            shown = "-" if band["recall"] is None else f"{band['recall']:.3f}"
            lines.append(f"  {band['band']:<12}{band['n']:>6}{band['found']:>7}{shown:>8}")
    return "\n".join(lines)
