import click
import numpy as np
import torch

from ..errors import SeamountaeError
from ..grid import cell_size_km, georeferenced
from ..patches import MAX_NAN_FRACTION
from ..outputs import check_writable, provenance, write_netcdf
from ..scoring import score
from ..training import read_model
from . import options
from .tile import grid_options, load_grid


@click.command("score")
@click.argument("grid_path", metavar="GRID", type=click.Path(dir_okay=False))
@click.option("--model", "model_path", required=True, type=click.Path(dir_okay=False), help="MODEL.pt from `seamountae train`.")
@click.option("--stride-px", "--stride", "stride_px", type=int, default=None, help="Resampled pixels between scored patch centres.  [default: 2]")
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
    options.check_device(params["device"])
    if threads is not None:
        if threads < 1:
            raise SeamountaeError(f"--threads {threads}: must be 1 or more")
        torch.set_num_threads(threads)
    model, meta = read_model(model_path)
    grid = load_grid(grid_path, var, depth_positive, config_file)
    dy_km, dx_km = cell_size_km(grid)
    height_km, width_km = grid.sizes["y"] * dy_km, grid.sizes["x"] * dx_km
    if min(height_km, width_km) < meta["patch_km"]:
        raise SeamountaeError(f"{grid_path}: the grid ({height_km:.0f} x {width_km:.0f} km) is smaller than one "
                              f"{meta['patch_km']:g} km patch of {model_path}; score a larger grid")
    scores = score(grid, model, meta, progress=options.show_progress(), **params)
    if not np.isfinite(scores["error"].values).any():
        raise SeamountaeError(f"{grid_path}: no {meta['patch_km']:g} km patch has enough valid cells to score "
                              f"(more than {MAX_NAN_FRACTION:.0%} missing everywhere); score a grid with more seafloor")
    record = provenance(params, {"grid": grid_path, "model": model_path})
    write_netcdf(georeferenced(scores, grid), output, overwrite, record)
    click.echo(f"{output}: scored {grid.shape[0]}×{grid.shape[1]} cells", err=True)
