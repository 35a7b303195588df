import click
import torch

from ..errors import SeamountaeError
from ..outputs import check_writable
from ..pipeline import score_file
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


@click.command("score")
@click.argument("grid_path", metavar="GRID", type=click.Path(dir_okay=False))
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False), help="MODEL.pt from `seamountae train`.")
@click.option("--stride-px", "--stride", "stride_px", type=int, default=None, help="Resampled pixels between scored patch centres.  [default: 2]")
@click.option("--batch-size", default=None, callback=_batch_size,
              help="Patches per forward pass, or auto (from free memory: 128 on the CPU, up to 32768 on CUDA).  [default: auto]")
@click.option("--threads", type=int, default=None,
              help="CPU threads for torch (per dask worker with --scheduler).  [default: all cores; local:N: cores / N]")
@click.option("--tiles", type=int, default=None,
              help="Score one of this many strips of rows (a SLURM array task); join the parts with `seamountae merge`.")
@click.option("--tile-index", type=int, default=None, help="Which strip, 0 .. TILES-1 (e.g. $SLURM_ARRAY_TASK_ID).")
@click.option("--scheduler", default=None, metavar="local:N|ADDRESS|FILE.json",
              help="Score on dask: local:N starts N worker processes here; tcp://HOST:PORT or a scheduler file "
                   "uses a running scheduler (dask-jobqueue, `dask scheduler`). Needs seamountae[dask].")
@grid_options
@options.device
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Output: SCORE.nc (netCDF-4), or a Zarr store when the name ends in .zarr.")
@options.overwrite
@options.common
def command(grid_path, model_path, stride_px, batch_size, threads, tiles, tile_index, scheduler, var, depth_positive, device,
            output, overwrite, config_file):
    """Map the model's reconstruction error, and the seamount score, over a whole grid.

    SCORE.nc holds, on the grid's own coordinates: elevation, error (fraction of patch variance the
    model cannot reconstruct), score (0..1, seamount-likeness calibrated on held-out seamounts) and
    relief_m (patch centre above its surroundings).

    The grid is read window by window and the output written as it is scored, so grids larger
    than memory can be scored; a global grid wraps around the antimeridian. On CUDA the model
    runs in mixed precision.

    On a cluster: --tiles N --tile-index I scores one strip of rows (merge the parts with
    `seamountae merge`), --scheduler scores on dask workers; both give the single-piece result.

    \b
    Examples:
      seamountae score sample_data/azores_east.nc --model model.pt -o score.nc --stride 2
      seamountae score grid.nc --model model.pt -o part_$SLURM_ARRAY_TASK_ID.nc --tiles 16 --tile-index $SLURM_ARRAY_TASK_ID
      seamountae score grid.nc --model model.pt -o score.nc --scheduler local:4
    """
    check_writable(output, overwrite)
    if (tiles is None) != (tile_index is None):
        raise SeamountaeError("--tiles and --tile-index go together: give both (e.g. --tiles 8 --tile-index 0) or neither")
    if threads is not None and threads < 1:
        raise SeamountaeError(f"--threads {threads}: must be 1 or more")
    params = options.parameters("score", config_file, stride_px=stride_px, device=device, scheduler=scheduler,
                                batch_size=batch_size)
    scheduler = params["scheduler"] or None
    if scheduler is None:  # dask workers may have devices this machine lacks: they check their own
        options.check_device(params["device"])
    if threads is not None and scheduler is None:  # otherwise torch's default: every physical core (or OMP_NUM_THREADS)
        torch.set_num_threads(threads)
    grid_params = options.parameters("grid", config_file, var=var, depth_positive=depth_positive)
    tile = None if tiles is None else (tiles, tile_index)
    counts = score_file(grid_path, model_path, output, params, grid_params, overwrite, progress=options.show_progress(),
                        tile=tile, threads=threads)
    where = "" if tile is None else f" (tile {tile_index} of {tiles})"
    summary(f"{output}: scored {counts['cells']} cells{where} ({counts['patches']} patches)")
