"""`seamountae plot`: a map of the bathymetry, the seamounts found and the model's error map (plot.py).

Layer 6, command line: imports layers 1-6 only.
"""

import click

from ..outputs import check_writable
from . import options, summary


@click.command("plot")
@click.argument("score_path", metavar="SCORE", type=click.Path(dir_okay=False))
@click.option("--detections", "detections_path", type=click.Path(dir_okay=False), default=None,
              help="Seamounts to mark: DETECTIONS.nc from `seamountae detect`, or a catalogue (GeoJSON, CSV).")
@click.option("--reference", "reference_path", type=click.Path(dir_okay=False), default=None,
              help="A reference catalogue: confirmed, new and missed seamounts get their own colours.")
@options.param("evaluate", "match_km")
@options.param("evaluate", "min_height_m")
@options.old_spelling("--min-height", "min_height_m")
@click.option("--dpi", type=click.IntRange(50, 600), default=150, show_default=True, help="Resolution of the PNG.")
@options.output
@options.overwrite
@options.common
def command(score_path, detections_path, reference_path, match_km, min_height_m, old_min_height_m, dpi, output, overwrite, config_file):
    """Draw a map (PNG): hillshaded bathymetry with the seamounts found, beside the autoencoder's error map.

    Needs matplotlib (pip install 'seamountae[plot]'). Seamounts are circled and numbered by
    their catalogue id; the right panel is the autoencoder's view, its reconstruction error (a picture:
    the catalogue comes from judged candidate summits, not from this map), low where the terrain
    looks like the training seamounts, with the footprints of the seamounts found outlined (given DETECTIONS.nc).

    \b
    Example:
      seamountae plot score.nc --detections detections.nc -o map.png
      seamountae plot score.nc --detections seamounts.geojson --reference known.csv --min-height-m 500 -o map.png
    """
    min_height_m = options.earlier(min_height_m, old_min_height_m)
    from ..pipeline import evaluation_arguments, plot_file
    from ..plot import require_matplotlib

    require_matplotlib()
    check_writable(output, overwrite)
    match = evaluation_arguments(options.parameters("evaluate", config_file, match_km=match_km, min_height_m=min_height_m))
    params = {**match, "dpi": dpi} if reference_path is not None else {"dpi": dpi}
    plot_file(score_path, output, detections_path, reference_path, overwrite, params)
    summary(f"{output}: map drawn")
