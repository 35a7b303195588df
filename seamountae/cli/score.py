"""`seamountae score`: a grid and a model to a score file, in this process, in parts or on dask (pipeline.score_file).

Layer 6, command line: imports layers 1-6 only.
"""

import click

from ..config import PRECISIONS
from ..errors import SeamountaeError
from ..outputs import check_writable
from . import options, summary
from .tile import grid_options


def _batch_size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
    if value is None or value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise click.BadParameter(f"{value!r}: use auto or a whole number of patches, 1 or more")
    return number


def use_model(model_path):
    """The model file a command uses: the one given, or the built-in one (said on stderr)."""
    from ..models import resolve_model

    path, builtin = resolve_model(model_path)
    if builtin:
        summary(f"using the built-in model ({path}; `seamountae models` describes it)")
    return path


model_option = click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
                            help="MODEL.pt from `seamountae train`.  [default: the built-in model, see `seamountae models`]")


def _region(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        from ..geometry import parse_region

        try:
            parse_region(value)
        except SeamountaeError as exc:
            raise click.BadParameter(str(exc).split(": ", 1)[1]) from None
    return value


def score_options(command):
    """The [score] parameters as options: shared by score and find."""
    for option in reversed((
        options.param("score", "region", "-R", metavar="W/E/S/N", callback=_region),
        options.param("score", "stride_px", "--stride"),
        options.param("score", "batch_size", callback=_batch_size),
        options.param("score", "device", callback=options.validate_device),
        options.param("score", "precision", type=click.Choice(("auto", *PRECISIONS))),
        options.param("score", "scheduler", metavar="local:N|ADDRESS|FILE.json"),
    )):
        command = option(command)
    return command


@click.command("score")
@click.argument("grid_path", metavar="GRID", type=click.Path(dir_okay=False))
@model_option
@score_options
@click.option("--threads", type=int, default=None,
              help="CPU threads for torch (per dask worker with --scheduler).  [default: all cores; local:N: cores / N]")
@click.option("--tiles", type=int, default=None,
              help="Score one of this many strips of rows (a SLURM array task); join the parts with `seamountae merge`.")
@click.option("--tile-index", type=int, default=None, help="Which strip, 0 .. TILES-1 (e.g. $SLURM_ARRAY_TASK_ID).")
@grid_options
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output: SCORE.nc (netCDF-4), a Zarr store when the name ends in .zarr, or a Cloud-Optimized "
                   "GeoTIFF of the score and error maps (for QGIS and GDAL; detect needs .nc or .zarr) for .tif.")
@options.overwrite
@options.common
def command(grid_path, model_path, threads, tiles, tile_index, output, overwrite, config_file, **values):
    """Judge every candidate summit of a grid, and map the model's reconstruction error over it.

    SCORE.nc holds, on the grid's own coordinates: elevation, error (fraction of patch variance the
    model cannot reconstruct), score (0..1: the error's conformal p-value among the training
    seamounts') and relief_m (patch centre above its surroundings); and a table of every candidate
    summit (candidate_*: its position, height, basal radius, shape, the model's evidence and its
    seamount score), which `seamountae detect` turns into a catalogue.

    The grid is read window by window and the output written as it is scored, so grids larger
    than memory can be scored; a global grid wraps around the antimeridian.

    On a cluster: --tiles N --tile-index I scores one strip of rows (merge the parts with
    `seamountae merge`), --scheduler scores on dask workers; both give the single-piece result.

    \b
    Examples:
      seamountae score sample_data/azores_east.nc --model model.pt -o score.nc --stride 2
      seamountae score grid.nc --model model.pt -o part_$SLURM_ARRAY_TASK_ID.nc --tiles 16 --tile-index $SLURM_ARRAY_TASK_ID
      seamountae score grid.nc --model model.pt -o score.nc --scheduler local:4
    """
    import torch
    from ..pipeline import score_file

    check_writable(output, overwrite)
    model_path = use_model(model_path)
    if (tiles is None) != (tile_index is None):
        raise SeamountaeError("--tiles and --tile-index go together: give both (e.g. --tiles 8 --tile-index 0) or neither")
    if threads is not None and threads < 1:
        raise SeamountaeError(f"--threads {threads}: must be 1 or more")
    params = options.parameters("score", config_file, **options.given("score", values))
    scheduler = params["scheduler"] or None
    if scheduler is None:  # dask workers may have devices this machine lacks: they check their own
        options.check_device(params["device"])
    if threads is not None and scheduler is None:  # otherwise torch's default: every physical core (or OMP_NUM_THREADS)
        torch.set_num_threads(threads)
    grid_params = options.parameters("grid", config_file, **options.given("grid", values))
    tile = None if tiles is None else (tiles, tile_index)
    counts = score_file(grid_path, model_path, output, params, grid_params, overwrite, progress=options.show_progress(),
                        tile=tile, threads=threads)
    where = "" if tile is None else f" (tile {tile_index} of {tiles})"
    summary(f"{output}: scored {counts['cells']} cells{where} ({counts['patches']} patches), "
            f"{counts['candidates']} candidate summits judged")
