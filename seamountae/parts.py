"""Scoring a grid in parts (SLURM job arrays) and merging the parts into one score file.

`seamountae score --tiles N --tile-index I` scores the I-th of N strips of rows; each strip reads
half a patch beyond its edges and cuts its patches from the whole grid's lattice (see lattice.py),
so its cells get exactly the values a single-piece run gives them. `seamountae merge` checks that
the parts come from the same grid, model, parameters and seamountae version, that none is missing
or repeated, and copies them into one file, strip by strip: the result is the single-piece score
file, with the same variables, chunks and provenance (the command line aside).

Layer 5, stages: imports layers 1-5 only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from .errors import SeamountaeError
from .outputs import atomic_output, check_writable, command_line, provenance_attrs

log = logging.getLogger("seamountae")

TILE_ATTRS = ("seamountae_tiles", "seamountae_tile_index", "seamountae_tile_rows", "seamountae_grid_rows")
PART_ONLY_PARAMETERS = ("tiles", "tile_index")


def tile_rows(n_rows: int, tiles: int, index: int, align: int) -> slice:
    """Rows of the index-th of `tiles` strips: nearly equal, boundaries on multiples of `align` (output chunks)."""
    if tiles < 1:
        raise SeamountaeError(f"--tiles {tiles}: must be 1 or more")
    if not 0 <= index < tiles:
        raise SeamountaeError(f"--tile-index {index}: must be 0 .. {tiles - 1} for --tiles {tiles} "
                              "(SLURM arrays: --array=0-{})".format(tiles - 1))
    most = -(-n_rows // align)
    if tiles > most:
        raise SeamountaeError(f"--tiles {tiles}: the grid has {n_rows} rows, enough for at most {most} tiles "
                              f"of {align} rows; use --tiles {most} or fewer")
    bounds = [min(n_rows, round(n_rows * i / tiles / align) * align) for i in range(tiles)] + [n_rows]
    return slice(bounds[index], bounds[index + 1])


def part_attrs(tiles: int, index: int, rows: slice, n_rows: int) -> dict:
    """Global attributes that mark a score file as one part of a tiled run."""
    return {"seamountae_tiles": int(tiles), "seamountae_tile_index": int(index),
            "seamountae_tile_rows": np.asarray([rows.start, rows.stop], np.int64), "seamountae_grid_rows": int(n_rows)}


def _read_part(path: Path) -> dict:
    import netCDF4

    if not path.exists():
        raise SeamountaeError(f"{path}: no such file; give the parts written by `seamountae score --tiles N --tile-index I`")
    try:
        with netCDF4.Dataset(path) as nc:
            attrs = {name: nc.getncattr(name) for name in nc.ncattrs()}
    except OSError:
        raise SeamountaeError(f"{path}: not a readable netCDF file; give the parts written by "
                              "`seamountae score --tiles N --tile-index I`") from None
    if attrs.get("seamountae_kind") != "score" or "seamountae_tile_index" not in attrs:
        raise SeamountaeError(f"{path}: not a part of a tiled score (no tile index); give the files written by "
                              "`seamountae score --tiles N --tile-index I`")
    parameters = json.loads(attrs["seamountae_parameters"])
    rows = [int(v) for v in np.atleast_1d(attrs["seamountae_tile_rows"])]
    return {"path": path, "attrs": attrs, "index": int(attrs["seamountae_tile_index"]), "rows": slice(*rows),
            "tiles": int(attrs["seamountae_tiles"]), "n_rows": int(attrs["seamountae_grid_rows"]),
            "precision": str(attrs.get("precision", "fp32")),
            "run": (attrs["seamountae_version"], attrs["seamountae_inputs"],
                    json.dumps({k: v for k, v in parameters.items() if k not in PART_ONLY_PARAMETERS}, sort_keys=True))}


def check_parts(paths) -> list[dict]:
    """The parts, in row order, once they are known to make one whole run; else a SeamountaeError saying what is wrong."""
    parts = [_read_part(Path(p)) for p in paths]
    if not parts:
        raise SeamountaeError("merge: no parts given; list the files written by `seamountae score --tiles N --tile-index I`")
    first = parts[0]
    for part in parts[1:]:
        if part["run"] != first["run"] or part["tiles"] != first["tiles"] or part["n_rows"] != first["n_rows"]:
            what = ("seamountae version", "grid or model", "parameters")[
                next((i for i in range(3) if part["run"][i] != first["run"][i]), 2)]
            raise SeamountaeError(f"{part['path']}: from another run than {first['path']} (other {what}); "
                                  "merge parts of one `seamountae score --tiles N` run")
        if part["precision"] != first["precision"]:  # `auto` on machines with other CPUs or GPUs
            raise SeamountaeError(f"{part['path']}: scored at {part['precision']}, {first['path']} at {first['precision']}; "
                                  f"score every part with the same --precision (e.g. --precision {first['precision']})")
    seen: dict[int, Path] = {}
    for part in parts:
        if part["index"] in seen:
            raise SeamountaeError(f"{part['path']}: tile {part['index']} again (also {seen[part['index']]}); give each part once")
        seen[part["index"]] = part["path"]
    missing = sorted(set(range(first["tiles"])) - set(seen))
    if missing:
        listed = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise SeamountaeError(f"merge: tile {listed} of {first['tiles']} missing; score it with "
                              f"`seamountae score ... --tiles {first['tiles']} --tile-index {missing[0]}` and merge again")
    parts.sort(key=lambda p: p["rows"].start)
    end = 0
    for part in parts:
        if part["rows"].start != end:
            raise SeamountaeError(f"{part['path']}: rows {part['rows'].start}..{part['rows'].stop} do not follow row {end}; "
                                  "the parts do not fit together; score them again")
        end = part["rows"].stop
    return parts


def _whole_grid(parts: list[dict]):
    """The grid the parts were scored on, as far as a score file needs it: coordinates and georeference."""
    from .grid import from_cf_dataset

    pieces = []
    for part in parts:
        with xr.open_dataset(part["path"], engine="netcdf4") as ds:
            pieces.append(from_cf_dataset(ds[["elevation", *(["crs"] if "crs" in ds else [])]])["elevation"])
    like = pieces[0]
    x = like.x.values
    for piece, part in zip(pieces[1:], parts[1:]):
        if not np.array_equal(piece.x.values, x):
            raise SeamountaeError(f"{part['path']}: other columns than {parts[0]['path']}; merge parts of one run")
    y = np.concatenate([p.y.values for p in pieces])
    return xr.DataArray(np.broadcast_to(np.float32(np.nan), (y.size, x.size)), dims=("y", "x"),
                        coords={"y": y, "x": x}, attrs=dict(like.attrs))


def merge(paths, output, overwrite: bool = False) -> dict:
    """PART... → one score file equal to a single-piece run's; returns {"parts", "rows", "cols"}."""
    import netCDF4

    from .lattice import CHUNK_ROWS
    from .scorefile import VARIABLES, create_score_file

    check_writable(output, overwrite)
    parts = check_parts(paths)
    grid = _whole_grid(parts)
    attrs = parts[0]["attrs"]
    meta = {"patch_km": float(attrs["patch_km"]), "patch_px": int(attrs["patch_px"]),
            "pyramid": [float(v) for v in np.atleast_1d(attrs["pyramid"])],
            "candidates": json.loads(attrs["candidate_rules"]), "threshold": {"value": float(attrs["threshold_auto"])}}
    parameters = {k: v for k, v in json.loads(attrs["seamountae_parameters"]).items() if k not in PART_ONLY_PARAMETERS}
    record = {"seamountae_version": attrs["seamountae_version"], "command": command_line(), "parameters": parameters,
              "inputs": json.loads(attrs["seamountae_inputs"])}
    nx = grid.sizes["x"]
    step = max(CHUNK_ROWS, (1 << 22) // max(nx, 1) // CHUNK_ROWS * CHUNK_ROWS)  # rows copied at once: bounded memory
    with atomic_output(output, overwrite) as tmp:
        out = create_score_file(tmp, grid, meta, int(attrs["stride_px"]), provenance_attrs(record),
                                precision=parts[0]["precision"])
        try:
            for part in parts:
                with netCDF4.Dataset(part["path"]) as src:
                    src.set_auto_mask(False)  # NaN is the fill value: copy values as they are
                    if not np.allclose(src["level_km"][:], out["level_km"][:]):
                        raise SeamountaeError(f"{part['path']}: other pyramid levels than expected; score the parts again")
                    n = part["rows"].stop - part["rows"].start
                    for a in range(0, n, step):
                        b = min(a + step, n)
                        rows = slice(part["rows"].start + a, part["rows"].start + b)
                        for name in VARIABLES:
                            if src[name].ndim == 3:
                                out[name][:, rows, :] = src[name][:, a:b, :]
                            else:
                                out[name][rows, :] = src[name][a:b, :]
        finally:
            out.close()
        from .evidence import candidates_from_dataset
        from .scorefile import append_candidates

        tables = []
        for part in parts:
            with xr.open_dataset(part["path"], engine="netcdf4") as src:
                tables.append(candidates_from_dataset(src.load()))
        append_candidates(tmp, pd.concat(tables, ignore_index=True))
    log.info("%s: merged %d parts (%d x %d cells)", output, len(parts), grid.sizes["y"], nx)
    return {"parts": len(parts), "rows": grid.sizes["y"], "cols": nx}
