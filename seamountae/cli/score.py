import click
import torch

from ..grid import georeferenced
from ..outputs import check_writable, provenance, write_netcdf
from ..scoring import score
from ..training import read_model
from . import options
from .tile import grid_options, load_grid


@click.command("score")
@click.argument("grid_path", metavar="GRID", type=click.Path(dir_okay=False))
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False), help="MODEL.pt from `seamountae train`.")
@click.option("--stride", "stride_px", type=int, default=None, help="Resampled pixels between scored patch centres.  [default: 2]")
@click.option("--batch-size", type=int, default=None, help="Patches per forward pass.  [default: 2048]")
@click.option("--threads", type=int, default=None, help="CPU threads for torch.  [default: all cores]")
@grid_options
@options.device
@options.output
@options.overwrite
@options.common
def command(grid_path, model_path, stride_px, batch_size, threads, var, depth_positive, device, output, overwrite, config_file):
    """Map the model's reconstruction error, and the seamount score, over a whole grid.

    SCORE.nc holds, on the grid's own coordinates: elevation, error (fraction of patch variance the
    model cannot reconstruct), score (0..1, seamount-likeness calibrated on held-out seamounts) and
    relief_m (patch centre above its surroundings).

    \b
    Example:
      seamountae score sample_data/azores_east.nc --model model.pt -o score.nc --stride 2
    """
    check_writable(output, overwrite)
    params = options.parameters("score", config_file, stride_px=stride_px, batch_size=batch_size, device=device)
    if threads:
        torch.set_num_threads(threads)
    model, meta = read_model(model_path)
    grid = load_grid(grid_path, var, depth_positive)
    scores = score(grid, model, meta, progress=options.show_progress(), **params)
    record = provenance(params, {"grid": grid_path, "model": model_path})
    write_netcdf(georeferenced(scores, grid), output, overwrite, record)
    click.echo(f"{output}: scored {grid.shape[0]}×{grid.shape[1]} cells", err=True)
