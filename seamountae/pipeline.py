"""The stages as file-to-file functions, and `run`: the whole chain from one configuration file.

Each stage function takes input paths and resolved parameters, calls the stage's library function
(`tile.tile`, `training.train`, `scoring.write_score`, `detection.detect`,
`catalogue.write_catalogue`) and writes its artifact atomically, with a provenance record of the
parameters and the SHA-256 of its inputs. The click commands are thin wrappers over them, and
`run` calls them in order, skipping a stage whose output already records the same parameters,
input hashes and seamountae version (content, not file times, decides: a stage re-run that
writes the same bytes leaves the next stage up to date).

Layer 5, stages: imports layers 1-5 only.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import __version__
from .catalogue import points_inside, read_catalogue, union, write_catalogue
from .config import MATCH_KM, PARAMETERS, RUN, defaults, toml_value, load, resolve
from .errors import SeamountaeError
from .geometry import GridGeometry
from .outputs import (atomic_directory, atomic_output, canonical, check_writable, is_zarr, provenance, provenance_attrs,
                      read_netcdf, read_provenance, remembered_hashes, require_zarr, sha256, write_netcdf)

log = logging.getLogger("seamountae")

OUTPUT_NAMES = {"tile": "patches.nc", "train": "model.pt", "score": "score.nc", "detect": "detections.nc"}
RESOLVED_CONFIG = "config.resolved.toml"


# --------------------------------------------------------------------------------------------- stages


def grid_kwargs(grid_params: dict) -> dict:
    """The [grid] parameters as keyword arguments of grid.read_grid / grid.open_grid."""
    depth = grid_params["depth_positive"]
    return {"var": grid_params["var"] or None, "depth_positive": None if depth == "auto" else depth,
            "mask_land": grid_params["mask_land"], "crs": grid_params.get("crs") or None,
            "islands": grid_params["islands"]}


def check_grid_fits(grid, grid_path, patch_km: float, whose: str = "") -> None:
    """A grid narrower than one patch has nothing to learn from or score: say so before any work."""
    from .geometry import GridGeometry

    dy_km, dx_km = GridGeometry.of(grid).cell_size_km()
    height_km, width_km = grid.sizes["y"] * dy_km, grid.sizes["x"] * dx_km
    if min(height_km, width_km) < patch_km:
        raise SeamountaeError(f"{grid_path}: the grid ({height_km:.0f} x {width_km:.0f} km) is smaller than one "
                              f"{patch_km:g} km patch{whose}; use a larger grid" + ("" if whose else " or a smaller --patch-km"))


def tile_parameters(params: dict, grid_params: dict) -> dict:
    """What a patches file records as its parameters."""
    return {**params, "grid": dict(grid_params)}


def tile_file(grid_path, catalogue_paths, output, params: dict, grid_params: dict, overwrite: bool = False,
              progress: bool = False):
    """GRID + CATALOGUE(s) → PATCHES.nc; returns the patches dataset. Several catalogues are joined
    (catalogue.union): an entry within MATCH_KM of an earlier catalogue's is the same seamount."""
    from .grid import read_grid
    from .tile import tile

    check_writable(output, overwrite)
    paths = [catalogue_paths] if isinstance(catalogue_paths, (str, os.PathLike)) else list(catalogue_paths)
    grid = read_grid(grid_path, **grid_kwargs(grid_params))
    check_grid_fits(grid, grid_path, params["patch_km"])
    geographic = bool(grid.attrs.get("geographic"))
    tables, totals = [], []
    for path in paths:
        catalogue = in_grid_coordinates(read_catalogue(path), grid, path, grid_path)
        tables.append(points_inside(catalogue, float(grid.x[0]), float(grid.x[-1]), float(grid.y[0]), float(grid.y[-1]),
                                    geographic=geographic)[0])
        totals.append(len(catalogue))
    inside = union(tables, MATCH_KM, geographic)
    if inside.empty:
        raise SeamountaeError(f"{', '.join(map(str, paths))}: none of {'its' if len(paths) == 1 else 'their'} {sum(totals)} "
                              f"points lies inside {grid_path}; check the catalogue's coordinates (lon, lat order) or use "
                              "the matching grid")
    for path, table, total in zip(paths, tables, totals):
        if len(table) < total:
            log.warning("%s: %d of %d seamounts lie outside the grid and were skipped", path, total - len(table), total)
    if len(paths) > 1:
        log.info("%s: %d seamounts from %d catalogues (%s inside the grid; entries within %g km of an earlier "
                 "catalogue's counted once)", grid_path, len(inside), len(paths), " + ".join(str(len(t)) for t in tables), MATCH_KM)
    patches = tile(grid, inside, **params, progress=progress)
    record = provenance(tile_parameters(params, grid_params), {"grid": grid_path, **numbered_roles("catalogue", paths)})
    write_netcdf(patches, output, overwrite, record)
    return patches


def in_grid_coordinates(catalogue, grid, catalogue_path, grid_path):
    """A catalogue in the grid's coordinates: lon/lat degrees are reprojected for a projected grid
    (whose x/y, in metres, span far more than any degree)."""
    looks_lonlat = bool(len(catalogue)) and bool((catalogue["lon"].abs() <= 360).all() and (catalogue["lat"].abs() <= 90).all())
    span = max(abs(float(grid.x[-1] - grid.x[0])), abs(float(grid.y[-1] - grid.y[0])))
    if int(grid.attrs.get("geographic", 0)) or not looks_lonlat or span <= 360:
        return catalogue
    if not grid.attrs.get("crs"):
        raise SeamountaeError(f"{catalogue_path}: gives lon/lat, but {grid_path} has projected x/y without a CRS to "
                              "reproject them to; give the grid its CRS (GeoTIFF, or netCDF with crs_wkt) or the "
                              "catalogue in the grid's x/y")
    from .geometry import GridGeometry

    x, y = GridGeometry.of(grid).from_lonlat(catalogue["lon"].to_numpy(float), catalogue["lat"].to_numpy(float))
    log.info("%s: lon/lat reprojected to %s's CRS", catalogue_path, grid_path)
    return catalogue.assign(lon=x, lat=y)


def numbered_roles(role: str, paths) -> dict:
    """Provenance's names for several inputs of one role: `role`, `role_2`, `role_3`, ..."""
    return {f"{role}_{i + 1}" if i else role: path for i, path in enumerate(paths)}


def train_file(patches_paths, output, params: dict, overwrite: bool = False, resume: bool | str = False,
               progress: bool = False, on_epoch: Callable[[int, float], None] | None = None) -> dict:
    """PATCHES.nc (one, or several tiled alike: several grids and catalogues) → MODEL.pt; returns
    the model's metadata.

    Training keeps a checkpoint, MODEL.pt.ckpt, rewritten after every epoch and deleted once the
    model is saved. resume=True continues from it (see training.train); resume="auto" does so
    only if it was made from the same patches and parameters, and otherwise starts afresh.
    """
    from .model import save_model
    from .tile import concat_patches
    from .training import checkpoint_mismatch, checkpoint_path, fingerprint, read_checkpoint, train
    from . import distributed

    check_writable(output, overwrite)
    paths = [patches_paths] if isinstance(patches_paths, (str, os.PathLike)) else list(patches_paths)
    try:
        sets = [read_netcdf(p, "patches", "tile") for p in paths]
        patches = concat_patches(sets)
    except SeamountaeError as exc:
        raise SeamountaeError(f"{', '.join(map(str, paths))}: {exc}") from None
    checkpoint = checkpoint_path(output)
    if resume == "auto":
        resume = False
        if checkpoint.exists():
            try:
                resume = checkpoint_mismatch(read_checkpoint(checkpoint), fingerprint(patches, **params)) is None
            except SeamountaeError:
                pass
            log.info("%s: %s", checkpoint, "resuming from it" if resume else "stale (other patches or parameters); starting afresh")
    elif not resume and checkpoint.exists():
        log.warning("%s: left by an interrupted run; starting afresh (pass --resume to continue it instead)", checkpoint)
    model, meta = train(patches, progress=progress, checkpoint=checkpoint, resume=bool(resume), on_epoch=on_epoch, **params)
    meta["provenance"] = provenance(params, numbered_roles("patches", paths))
    meta["training"]["sources"] = [  # for the model card: which grids, how many seamounts each
        {"patches": str(p), "grid": json.loads(s.attrs.get("seamountae_inputs", "{}")).get("grid", {}).get("path", "?"),
         "n_seamounts": int(s.attrs["n_seamounts"]), "n_patches": int(s.sizes["sample"])} for p, s in zip(paths, sets)]
    if distributed.rank() != 0:  # under torchrun every process has the model; rank 0 writes it
        return meta
    with atomic_output(output, overwrite) as tmp:
        save_model(model, meta, tmp)
    checkpoint.unlink(missing_ok=True)
    return meta


def score_parameters(params: dict, grid_params: dict) -> dict:
    """What a score file written by `score_file` records as its parameters (not the scheduler:
    where it was computed does not change the file)."""
    return {**{k: v for k, v in params.items() if k != "scheduler"}, "grid": dict(grid_params)}


def score_file(grid_path, model_path, output, params: dict, grid_params: dict, overwrite: bool = False,
               progress: bool = False, tile: tuple[int, int] | None = None, threads: int | None = None) -> dict:
    """GRID + MODEL.pt → SCORE.nc (or a Zarr store, or a GeoTIFF of the maps for viewing), streamed
    window by window; returns scoring.write_score's counts.

    tile=(N, I): write only the I-th of N strips of rows, a part for `seamountae merge` (parts.py).
    params["region"] (if set, W/E/S/N): score only that box of a lon/lat grid (grid.cut_region, with
    the halo scoring.reach_km says its cells read), into a score file of the box.
    params["scheduler"] (if set): score on a dask cluster (local:N, a scheduler address or file; see
    cluster.py) with `threads` torch threads per worker.
    """
    from .geometry import parse_region
    from .grid import cut_region, open_grid, read_grid
    from .patches import MAX_NAN_FRACTION
    from . import lattice, runner, scorefile, scoring
    from .model import read_model

    check_writable(output, overwrite)
    if tile is not None and (is_zarr(output) or scorefile.is_geotiff(output)):
        raise SeamountaeError(f"{output}: tiles are written as netCDF parts for `seamountae merge`; "
                              "name the part *.nc (merge them into one file), or score without --tiles")
    if is_zarr(output):
        require_zarr(output)
    runner.return_freed_memory()
    model, meta = read_model(model_path)
    grid = open_grid(grid_path, **grid_kwargs(grid_params))
    recorded = score_parameters(params, grid_params)
    scheduler = params.get("scheduler") or None
    region = parse_region(params["region"]) if params.get("region") else None
    params = {k: v for k, v in params.items() if k not in ("scheduler", "region")}
    rows, cols, attrs, origin = slice(None), slice(None), {}, None
    try:
        if region is not None:
            whole = grid
            grid, rows, cols = cut_region(grid, region, scoring.reach_km(meta))
            grid.set_close(whole.close)
            recorded.update(region_halo_km=round(scoring.reach_km(meta), 3))
        check_grid_fits(grid.isel(y=rows, x=cols), grid_path, meta["patch_km"], f" of {model_path}")
        if tile is not None:  # a strip of the grid's rows, or of the region's
            from .parts import part_attrs, tile_rows

            first, last, _ = rows.indices(grid.sizes["y"])
            strip = tile_rows(last - first, *tile, align=lattice.CHUNK_ROWS)
            if region is not None:  # a region's parts index their candidates as the region's file does
                origin = first, cols.start
            rows = slice(first + strip.start, first + strip.stop)
            recorded.update(tiles=tile[0], tile_index=tile[1])
            attrs = part_attrs(*tile, strip, last - first)
        record = provenance(recorded, {"grid": grid_path, "model": model_path})
        if not scheduler:  # on a cluster, a worker's device decides what auto means
            params["precision"] = runner.score_precision(meta, params["precision"], params["device"], str(model_path))
        start = time.perf_counter()
        geotiff = scorefile.is_geotiff(output)
        with (atomic_directory if is_zarr(output) else atomic_output)(output, overwrite) as final:
            # A GeoTIFF is made from a netCDF score file written first beside it.
            tmp = final.with_name(final.name + ".nc") if geotiff else final
            if scheduler:
                from .cluster import write_score_on_cluster

                cut = {} if region is None else {"region": region, "halo_km": scoring.reach_km(meta)}
                counts = write_score_on_cluster(scheduler, grid_path, grid_kwargs(grid_params), model_path, grid, meta, tmp,
                                                {**provenance_attrs(record), **attrs}, progress=progress, rows=rows,
                                                cols=cols, origin=origin, threads=threads, **cut, **params)
            else:
                counts = scoring.write_score(grid, model, meta, tmp, {**provenance_attrs(record), **attrs},
                                             progress=progress, rows=rows, cols=cols, origin=origin, **params)
            if tile is not None:  # a strip may be all land or all gaps: the whole grid decides
                if not counts["scored"]:
                    log.warning("%s: tile %d of %d (rows %d..%d) has no cell to score", output, tile[1], tile[0],
                                rows.start, rows.stop)
            elif not counts["valid"]:  # read_grid says why (all nodata, or all land)
                read_grid(grid_path, **grid_kwargs(grid_params))
            elif not counts["scored"]:
                raise SeamountaeError(f"{grid_path}: no {meta['patch_km']:g} km patch has enough valid cells to score "
                                      f"(more than {MAX_NAN_FRACTION:.0%} missing everywhere); score a grid with more seafloor")
            if geotiff:
                try:
                    scorefile.geotiff_from_score(tmp, final, provenance_attrs(record))
                finally:
                    tmp.unlink(missing_ok=True)
        from .terrain import statistics, unusual

        problem = unusual(statistics(grid), meta.get("terrain"))  # models without the record: no check
        if problem:
            log.warning("%s: unlike the terrain %s was trained on: %s", grid_path, model_path, problem)
    finally:
        grid.close()
    seconds = time.perf_counter() - start
    log.info("%s: %d patches in %.1f s, %.0f cells/s", output, counts["patches"], seconds, counts["cells"] / max(seconds, 1e-9))
    return counts


def detect_file(score_path, output, params: dict, overwrite: bool = False):
    """SCORE.nc (or .zarr) → DETECTIONS.nc; returns the table of seamounts.

    Streams: the score file is opened lazily and only its candidates table is read whole; each
    seamount's footprint reads the elevation around it and is written into the detections file's
    chunked `cluster` variable, so memory follows the number of seamounts, not the grid's size.
    """
    import netCDF4

    from .detection import (LABEL_CHUNKS, detections_dataset, elevation_grid, finish_table, label_footprints,
                            resolve_threshold, select)
    from .grid import HDF5_LOCK, from_cf_dataset, georeferenced

    check_writable(output, overwrite)
    resolve_threshold(params["threshold"], method=params["method"])  # a bad value is refused before the score file is read
    with read_netcdf(score_path, "score", "score", load=False) as raw:
        scores = from_cf_dataset(raw)
        threshold = resolve_threshold(params["threshold"], scores, params["method"])
        table = select(scores, **params)
        elevation = scores["elevation"]
        seamounts = finish_table(table, scores)
        shape = elevation.shape
        empty = np.broadcast_to(np.int32(0), shape)  # the layout only: the labels are written below
        ds = detections_dataset(seamounts, empty, scores, threshold)
        cf = georeferenced(ds, elevation)
        cluster = cf["cluster"]
        record = provenance(params, {"score": score_path})
        with atomic_output(output, overwrite) as tmp:
            write_netcdf(cf.drop_vars("cluster"), tmp, overwrite=True, record=record, atomic=False)
            with HDF5_LOCK, netCDF4.Dataset(tmp, "a") as nc:
                chunks = (min(shape[0], LABEL_CHUNKS[0]), min(shape[1], LABEL_CHUNKS[1]))
                labels = nc.createVariable("cluster", "i4", cluster.dims, zlib=True, complevel=4, chunksizes=chunks)
                labels.setncatts(cluster.attrs)
                # Room for three bands of chunks across the grid: a footprint reaches into the next band.
                band_bytes = 4 * chunks[0] * shape[1]
                labels.set_var_chunk_cache(size=3 * band_bytes, nelems=max(1009, 8 * -(-shape[1] // chunks[1])),
                                           preemption=0.75)
                for r in range(0, shape[0], chunks[0]):  # 0 where no seamount stands: written chunk by chunk
                    labels[r : r + chunks[0], :] = np.zeros((min(chunks[0], shape[0] - r), shape[1]), np.int32)
                # The file's rows run as the grid's (ascending), whatever its CF layout names them.
                label_footprints(labels, table, elevation_grid(scores))
    return seamounts


def export_file(detections_path, output, fmt: str = "auto", overwrite: bool = False, footprints=None):
    """DETECTIONS.nc → a GeoJSON, CSV or GMT catalogue (fmt "auto": by the output's suffix), and with
    `footprints`, each seamount's footprint as a GeoJSON Polygon; returns the table. Streams: memory
    follows the number of seamounts, not the grid's size."""
    from .catalogue import format_of, write_footprints
    from .detection import table_from_detections
    from .export import footprint_polygons

    check_writable(output, overwrite)
    if footprints is not None:
        check_writable(footprints, overwrite)
    fmt = format_of(output, None if fmt == "auto" else fmt)
    from .grid import from_cf_dataset

    # Opened lazily: the table is read whole, the footprint map only around each seamount, and
    # footprints are written one by one.
    with read_netcdf(detections_path, "detections", "detect", load=False) as raw:
        ds = from_cf_dataset(raw)
        table = table_from_detections(ds)
        record = provenance({"format": fmt}, {"detections": detections_path})
        record["grid_extent"] = list(GridGeometry.of(ds).lonlat_bounds())  # for evaluate, should the grid move
        write_catalogue(table, output, fmt=fmt, provenance=record, overwrite=overwrite)
        if footprints is not None:
            write_footprints(footprint_polygons(ds), footprints, provenance=record, overwrite=overwrite)
    return table


def find_file(grid_path, model_path, output, score_params: dict, detect_params: dict, grid_params: dict,
              fmt: str = "auto", keep=None, overwrite: bool = False, progress: bool = False) -> tuple:
    """GRID (+ MODEL.pt) → a catalogue: score → detect → export in one go, streaming as `score` does.

    The score and detections files go to a temporary folder beside the output (removed at the end)
    or, with `keep`, to that folder (score.nc, detections.nc). The catalogue records the grid, the
    model and every stage's parameters. Returns (table, score counts).
    """
    import shutil
    import tempfile

    from .catalogue import format_of

    check_writable(output, overwrite)
    fmt = format_of(output, None if fmt == "auto" else fmt)
    if keep is not None:
        keep = Path(keep)
        if keep.exists() and not keep.is_dir():
            raise SeamountaeError(f"{keep}: --keep names a folder for the intermediate files, and this is a file; "
                                  "give a folder name")
        keep.mkdir(parents=True, exist_ok=True)
        for name in ("score.nc", "detections.nc"):
            check_writable(keep / name, overwrite)
    folder = keep or Path(tempfile.mkdtemp(prefix=".seamountae-find.", dir=Path(output).parent or "."))
    try:
        counts = score_file(grid_path, model_path, folder / "score.nc", score_params, grid_params, overwrite=True,
                            progress=progress)
        detect_file(folder / "score.nc", folder / "detections.nc", detect_params, overwrite=True)
        ds = read_netcdf(folder / "detections.nc", "detections", "detect")
        from .detection import table_from_detections
        from .grid import from_cf_dataset

        table = table_from_detections(ds)
        record = provenance({"score": score_parameters(score_params, grid_params), "detect": detect_params,
                             "format": fmt}, {"grid": grid_path, "model": model_path})
        record["grid_extent"] = list(GridGeometry.of(from_cf_dataset(ds)).lonlat_bounds())
        write_catalogue(table, output, fmt=fmt, provenance=record, overwrite=overwrite)
    finally:
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return table, counts


def evaluation_arguments(params: dict) -> dict:
    """The [evaluate] parameters as keyword arguments of evaluation.evaluate (0 means off)."""
    factor = params["match_radius_factor"]
    return {"match_km": None if factor > 0 else params["match_km"],
            "match_radius_factor": factor if factor > 0 else None,
            "min_height_m": params["min_height_m"] or None}


def _recorded_file(recorded: dict, by: Path) -> Path | None:
    """A file an output's provenance names: as recorded (relative to where that command ran), else
    beside the output that records it; None if neither exists."""
    path = Path(recorded["path"])
    for candidate in (path, by.parent / path, by.parent / path.name):
        if candidate.is_file():
            return candidate
    return None


def searched_grid(catalogue_path) -> tuple[Path | None, dict, tuple | None]:
    """The grid a catalogue of `find` or `export` came from, followed through its provenance
    (catalogue → detections → score → grid): (grid path or None where it is not found, its [grid]
    parameters as recorded, the grid's lon/lat extent as the catalogue records it or None)."""
    path = Path(catalogue_path)
    record = read_provenance(path)
    if not isinstance(record, dict):
        raise SeamountaeError(f"{path}: records no provenance, so the grid it was searched in is unknown; "
                              "give --region W/E/S/N, or --no-clip to score against the whole reference")
    extent = tuple(record["grid_extent"]) if record.get("grid_extent") else None
    for role in ("detections", "score"):  # export's record names the detections, detect's the score
        inputs = record.get("inputs", {})
        if "grid" in inputs or role not in inputs:
            break
        upstream = _recorded_file(inputs[role], path)
        record = read_provenance(upstream) if upstream is not None else None
        if not isinstance(record, dict):
            return None, {}, extent
        path = upstream
    if "grid" not in record.get("inputs", {}):
        raise SeamountaeError(f"{catalogue_path}: its provenance names no grid (not written by find or export); "
                              "give --region W/E/S/N, or --no-clip to score against the whole reference")
    params = record.get("parameters", {})
    grid_params = params.get("grid") or params.get("score", {}).get("grid") or {}
    return _recorded_file(record["inputs"]["grid"], path), grid_params, extent


def evaluate_files(catalogue_path, reference_path, params: dict, region=None, clip: bool = True) -> dict:
    """evaluation.evaluate of two catalogue files. Recall counts the reference inside `region`
    (W, E, S, N) if given, else, unless clip=False, inside the grid the catalogue was searched in
    (`searched_grid`); where that grid is gone, inside the extent the catalogue records."""
    from .evaluation import evaluate
    from .grid import open_grid

    found, reference = read_catalogue(catalogue_path), read_catalogue(reference_path)
    arguments = evaluation_arguments(params)
    if region is not None or not clip:
        return evaluate(found, reference, **arguments, region=region)
    grid_path, grid_params, extent = searched_grid(catalogue_path)
    if grid_path is None:
        if extent is None:
            raise SeamountaeError(f"{catalogue_path}: the grid it was searched in is not found where its provenance "
                                  "says; give --region W/E/S/N, or --no-clip to score against the whole reference")
        log.warning("%s: the grid it was searched in is not found; clipping the reference to its recorded extent "
                    "%s instead (--region to choose)", catalogue_path, "/".join(f"{v:g}" for v in extent))
        return evaluate(found, reference, **arguments, region=extent)
    grid = open_grid(grid_path, **grid_kwargs({**defaults("grid"), **grid_params}))
    try:
        return evaluate(found, reference, **arguments, grid=grid)
    finally:
        grid.close()


def evaluate_file(catalogue_path, reference_path, output, params: dict, overwrite: bool = False,
                  region=None, clip: bool = True) -> dict:
    """CATALOGUE + REFERENCE → EVALUATION.json (precision, recall, misses…); returns the result."""
    check_writable(output, overwrite)
    result = evaluate_files(catalogue_path, reference_path, params, region, clip)
    doc = {"seamountae": provenance(params, {"catalogue": catalogue_path, "reference": reference_path}), **result}
    with atomic_output(output, overwrite) as tmp:
        tmp.write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return result


def plot_file(score_path, output, detections_path=None, reference_path=None, overwrite: bool = False,
              params: dict | None = None) -> None:
    """SCORE.nc (+ detections, + reference) → a PNG map, with provenance in its metadata."""
    from .plot import draw_map, require_matplotlib

    require_matplotlib()
    check_writable(output, overwrite)
    params = params or {}
    figure = draw_map(score_path, detections_path, reference_path, **params)  # reads (and checks) every input
    record = provenance(params, {"score": score_path, "detections": detections_path, "reference": reference_path})
    with atomic_output(output, overwrite) as tmp:
        with open(tmp, "wb") as handle:
            figure.savefig(handle, format="png", bbox_inches="tight", pad_inches=0.15,
                           metadata={"seamountae": json.dumps(record, sort_keys=True), "Description": figure.description})


# ------------------------------------------------------------------------------------------ up to date


def up_to_date(output, params: dict, inputs: dict) -> bool:
    """Whether `output` records exactly these parameters, these inputs' SHA-256 and this version."""
    record = read_provenance(output)
    if not isinstance(record, dict) or record.get("seamountae_version") != __version__:
        return False
    if canonical(record.get("parameters")) != canonical(params):
        return False
    recorded = record.get("inputs") or {}
    wanted = {role: path for role, path in inputs.items() if path is not None}
    if set(recorded) != set(wanted):
        return False
    return all(isinstance(recorded[role], dict) and recorded[role].get("sha256") == sha256(path)
               for role, path in wanted.items())


# ------------------------------------------------------------------------------------------------- run


@dataclass
class RunConfig:
    """A `seamountae run` file, read and checked: the [run] paths resolved, every stage's parameters."""

    path: Path
    files: dict  # [run] key → Path (or None) / bool
    params: dict  # stage → resolved parameters
    given: dict  # [run] as written in the file

    @property
    def output_dir(self) -> Path:
        return self.files["output_dir"]

    def output(self, stage: str) -> Path:
        if stage == "export":
            extension = {"auto": "geojson", "gmt": "txt"}.get(self.params["export"]["format"], self.params["export"]["format"])
            return self.output_dir / f"seamounts.{extension}"
        if stage == "evaluate":
            return self.output_dir / "evaluation.json"
        if stage == "plot":
            return self.output_dir / "map.png"
        return self.output_dir / OUTPUT_NAMES[stage]


def read_run_config(path) -> RunConfig:
    """Read and check a run file: [run] keys, the files they name, and every stage section."""
    path = Path(path)
    content = load(path)  # checks every stage section and key; a missing or unreadable file is an error
    section = content.get("run")
    fix = "see the [run] example at the end of `seamountae config --template`"
    if not isinstance(section, dict):
        raise SeamountaeError(f"{path}: no [run] section naming the grid, catalogue and output folder; {fix}")
    unknown = set(section) - set(RUN)
    if unknown:
        raise SeamountaeError(f"{path}: unknown key(s) {', '.join(sorted(unknown))} in [run]; known: {', '.join(RUN)}")
    base = path.parent
    files: dict = {}
    for key, (default, _) in RUN.items():
        value = section.get(key, default)
        if not isinstance(value, type(default)):
            kind = "true or false" if isinstance(default, bool) else "a path in quotes"
            raise SeamountaeError(f"{path}: [run] {key} = {toml_value(value)}: must be {kind}; {fix}")
        if isinstance(default, bool):
            files[key] = value
        else:
            files[key] = Path(os.path.normpath(base / value)) if value else None
    for key in ("grid_train", "catalogue"):
        if files[key] is None:
            raise SeamountaeError(f"{path}: [run] has no {key}; name the file (relative to {base or '.'}); {fix}")
    files["grid_search"] = files["grid_search"] or files["grid_train"]
    for key in ("grid_train", "catalogue", "grid_search", "reference"):
        if files[key] is not None and not files[key].is_file():
            raise SeamountaeError(f"{path}: [run] {key}: {files[key]} does not exist; fix the path "
                                  f"(relative paths are relative to the config file's folder, {base or '.'})")
    if files["output_dir"] is None:
        files["output_dir"] = Path(os.path.normpath(base / RUN["output_dir"][0]))
    params = {stage: resolve(stage, path, {}) for stage in PARAMETERS}
    given = dict(section)
    given["grid_search"] = given.get("grid_search") or given["grid_train"]
    return RunConfig(path, files, params, given)


def resolved_text(cfg: RunConfig) -> str:
    """The resolved configuration as TOML: paths relative to the output folder, so it runs from there."""
    lines = [f"# seamountae {__version__} run: the configuration this folder was made with, every parameter",
             f"# resolved; `seamountae run {RESOLVED_CONFIG}` re-runs it (paths are relative to this folder).",
             "", "[run]"]
    for key, (default, _) in RUN.items():
        value = cfg.files[key]
        if isinstance(default, bool):
            lines.append(f"{key} = {toml_value(value)}")
        elif key == "output_dir":
            lines.append(f'{key} = "."')
        elif value is not None:  # as given if absolute, else relative to the output folder
            given = Path(cfg.given.get(key) or value)
            shown = given if given.is_absolute() else Path(os.path.relpath(value.absolute(), cfg.output_dir.absolute()))
            lines.append(f"{key} = {json.dumps(shown.as_posix())}")
    lines.append("")
    for stage, values in cfg.params.items():
        lines.append(f"[{stage}]")
        for key, value in values.items():
            lines.append(f"{key} = {toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _replaceable(output: Path, overwrite: bool) -> None:
    """A file under an output's name that seamountae did not write is the user's: keep it unless --overwrite."""
    if output.exists() and not overwrite and read_provenance(output) is None:
        raise SeamountaeError(f"{output}: exists and is not a seamountae output; move it away, choose another "
                              "output_dir, or pass --overwrite to replace it")


def run(config_path, force: bool = False, overwrite: bool = False, progress: bool = False,
        report: Callable[[str], None] = log.info) -> dict:
    """Run tile → train → score → detect → export (→ evaluate, → plot) as the config file says.

    A stage whose output is up to date (same parameters, input hashes and version in its
    provenance) is skipped unless `force`. Stale seamountae outputs are replaced; any other file
    under an output's name only with `overwrite`. An interrupted training resumes from its
    checkpoint. Returns {stage: "ran" | "up to date"}, plus "evaluation" (the result) when the
    config names a reference.
    """
    cfg = read_run_config(config_path)
    if cfg.files["plot"]:
        from .plot import require_matplotlib

        require_matplotlib()
    out = cfg.output_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SeamountaeError(f"{out}: cannot create the output folder ({exc.strerror or exc}); "
                              f"change output_dir in {cfg.path}") from None
    check_writable(out / RESOLVED_CONFIG, True)
    p, f = cfg.params, cfg.files
    from .catalogue import format_of

    export_format = format_of(cfg.output("export"), None if p["export"]["format"] == "auto" else p["export"]["format"])
    steps = [
        ("tile", tile_parameters(p["tile"], p["grid"]), {"grid": f["grid_train"], "catalogue": f["catalogue"]},
         lambda o: tile_file(f["grid_train"], f["catalogue"], o, p["tile"], p["grid"], overwrite=True)),
        ("train", p["train"], {"patches": cfg.output("tile")},
         lambda o: train_file(cfg.output("tile"), o, p["train"], overwrite=True, resume="auto", progress=progress)),
        ("score", score_parameters(p["score"], p["grid"]), {"grid": f["grid_search"], "model": cfg.output("train")},
         lambda o: score_file(f["grid_search"], cfg.output("train"), o, p["score"], p["grid"], overwrite=True,
                              progress=progress)),
        ("detect", p["detect"], {"score": cfg.output("score")},
         lambda o: detect_file(cfg.output("score"), o, p["detect"], overwrite=True)),
        ("export", {"format": export_format}, {"detections": cfg.output("detect")},
         lambda o: export_file(cfg.output("detect"), o, export_format, overwrite=True)),
    ]
    if f["plot"]:
        match = evaluation_arguments(p["evaluate"]) if f["reference"] is not None else {}
        steps.append(("plot", match, {"score": cfg.output("score"), "detections": cfg.output("detect"),
                                      "reference": f["reference"]},
                      lambda o: plot_file(cfg.output("score"), o, cfg.output("detect"), f["reference"], overwrite=True,
                                          params=match)))
    for stage, _, _, _ in steps:
        _replaceable(cfg.output(stage), overwrite)
    with atomic_output(out / RESOLVED_CONFIG, overwrite=True) as tmp:
        tmp.write_text(resolved_text(cfg) + "\n", encoding="utf-8")
    done: dict = {}
    with remembered_hashes():  # each input is read once to check its stage and to record it
        for stage, params, inputs, action in steps:
            output = cfg.output(stage)
            if not force and up_to_date(output, params, inputs):
                report(f"{stage}: {output} is up to date")
                done[stage] = "up to date"
                continue
            report(f"{stage}: writing {output}")
            action(output)
            done[stage] = "ran"
    if f["reference"] is not None:
        done["evaluation"] = evaluate_file(cfg.output("export"), f["reference"], cfg.output("evaluate"), p["evaluate"],
                                           overwrite=True)
    return done
