import logging
import time

import click
import torch

from ..config import load as load_config
from ..errors import SeamountaeError
from ..grid import cell_size_km, open_grid, read_grid
from ..outputs import atomic_output, check_writable, provenance, provenance_attrs
from ..patches import MAX_NAN_FRACTION
from ..scoring import return_freed_memory, write_score
from ..training import read_model
from . import options
from .tile import grid_options

log = logging.getLogger("seamountae")


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
              help="Patches per forward pass, or auto (from free memory: 256 on the CPU, up to 32768 on CUDA).  [default: auto]")
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

    The grid is read window by window and the output written as it is scored, so grids larger
    than memory can be scored; a global grid wraps around the antimeridian. On CUDA the model
    runs in mixed precision.

    \b
    Example:
      seamountae score sample_data/azores_east.nc --model model.pt -o score.nc --stride 2
    """
    check_writable(output, overwrite)
    params = options.parameters("score", config_file, stride_px=stride_px, device=device,
                                batch_size=None if batch_size == "auto" else batch_size)
    if batch_size == "auto" or (batch_size is None and "batch_size" not in load_config(config_file).get("score", {})):
        params["batch_size"] = "auto"
    options.check_device(params["device"])
    if threads is not None:  # otherwise torch's default: every physical core (or OMP_NUM_THREADS)
        if threads < 1:
            raise SeamountaeError(f"--threads {threads}: must be 1 or more")
        torch.set_num_threads(threads)
    return_freed_memory()  # memory bounded by the window, not creeping up with heap fragmentation
    model, meta = read_model(model_path)
    grid_params = options.parameters("grid", config_file, var=var, depth_positive=depth_positive)
    depth = grid_params["depth_positive"]
    grid = open_grid(grid_path, var=grid_params["var"] or None, depth_positive=None if depth == "auto" else depth,
                     mask_land=grid_params["mask_land"])
    try:
        dy_km, dx_km = cell_size_km(grid)
        height_km, width_km = grid.sizes["y"] * dy_km, grid.sizes["x"] * dx_km
        if min(height_km, width_km) < meta["patch_km"]:
            raise SeamountaeError(f"{grid_path}: the grid ({height_km:.0f} x {width_km:.0f} km) is smaller than one "
                                  f"{meta['patch_km']:g} km patch of {model_path}; score a larger grid")
        record = provenance(params, {"grid": grid_path, "model": model_path})
        start = time.perf_counter()
        with atomic_output(output, overwrite) as tmp:
            counts = write_score(grid, model, meta, tmp, provenance_attrs(record), progress=options.show_progress(), **params)
            if not counts["valid"]:  # read_grid says why (all nodata, or all land), as every command does
                read_grid(grid_path, var=grid_params["var"] or None, depth_positive=None if depth == "auto" else depth,
                          mask_land=grid_params["mask_land"])
            if not counts["scored"]:
                raise SeamountaeError(f"{grid_path}: no {meta['patch_km']:g} km patch has enough valid cells to score "
                                      f"(more than {MAX_NAN_FRACTION:.0%} missing everywhere); score a grid with more seafloor")
    finally:
        grid.close()
    seconds = time.perf_counter() - start
    log.info("%s: %d patches in %.1f s, %.0f cells/s (device %s, %d CPU threads)", output, counts["patches"], seconds,
             grid.size / seconds, params["device"], torch.get_num_threads())
    click.echo(f"{output}: scored {grid.shape[0]}×{grid.shape[1]} cells", err=True)
