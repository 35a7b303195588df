"""`seamountae find`: a grid to a catalogue in one command, score, detect and export (pipeline.find_file).

Layer 6, command line: imports layers 1-6 only.
"""

import click

from ..config import CATALOGUE_FORMATS
from ..outputs import check_writable
from . import options, summary
from .score import model_option, score_options, use_model
from .tile import grid_options


@click.command("find")
@click.argument("grid_path", metavar="GRID", type=click.Path(dir_okay=False))
@model_option
@options.param("export", "format", type=click.Choice(["auto", *CATALOGUE_FORMATS]))
@options.params("detect")
@score_options
@click.option("--keep", type=click.Path(file_okay=False), default=None,
              help="Keep the intermediate score.nc and detections.nc in this folder (default: removed).")
@grid_options
@options.output
@options.overwrite
@options.common
def command(grid_path, model_path, format, keep, output, overwrite, config_file, **values):
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
    score_params = options.parameters("score", config_file, **options.given("score", values))
    if not score_params["scheduler"]:
        options.check_device(score_params["device"])
    detect_params = options.parameters("detect", config_file, **options.given("detect", values))
    grid_params = options.parameters("grid", config_file, **options.given("grid", values))
    fmt = options.parameters("export", config_file, format=format)["format"]
    table, counts = find_file(grid_path, model_path, output, score_params, detect_params, grid_params, fmt, keep,
                              overwrite, progress=options.show_progress())
    summary(f"{output}: {len(table)} seamounts among {counts['candidates']} candidate summits")
