import click

from ..outputs import check_writable
from . import options, summary
from .score import model_option, use_model
from .tile import grid_options


@click.command("find")
@click.argument("grid_path", metavar="GRID", type=click.Path(dir_okay=False))
@model_option
@click.option("--format", "fmt", type=click.Choice(["auto", "geojson", "csv", "gmt"]), default=None,
              help="Catalogue format; auto: from the file name (.csv, .txt/.gmt/.xy for GMT, else GeoJSON).  [default: auto]")
@click.option("--threshold", default=None,
              help="Minimum seamount score (0..1) of a reported candidate, or auto (the model's own).  [default: auto]")
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Keep the intermediate score.nc and detections.nc in this folder (default: removed).")
@grid_options
@options.device
@options.output
@options.overwrite
@options.common
def command(grid_path, model_path, fmt, threshold, keep, var, depth_positive, device, output, overwrite, config_file):
    """From a grid to a seamount catalogue in one command: score, detect and export.

    Uses the built-in model unless --model is given (see `seamountae models`); the parameters are
    those of the separate stages (--config FILE for any of them), and the catalogue records the
    grid, the model and all of them.

    \b
    Examples:
      seamountae find sample_data/azores_east.nc -o seamounts.geojson
      seamountae find grid.tif -o seamounts.txt --model model.pt --keep work/   # GMT text, intermediates kept
    """
    from ..pipeline import find_file

    check_writable(output, overwrite)
    model_path = use_model(model_path)
    score_params = options.parameters("score", config_file, device=device)
    if not score_params["scheduler"]:
        options.check_device(score_params["device"])
    detect_params = options.parameters("detect", config_file, threshold=threshold)
    grid_params = options.parameters("grid", config_file, var=var, depth_positive=depth_positive)
    fmt = options.parameters("export", config_file, format=fmt)["format"]
    table, counts = find_file(grid_path, model_path, output, score_params, detect_params, grid_params, fmt, keep,
                              overwrite, progress=options.show_progress())
    summary(f"{output}: {len(table)} seamounts among {counts['candidates']} candidate summits")
