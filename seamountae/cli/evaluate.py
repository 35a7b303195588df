"""`seamountae evaluate`: a found catalogue scored against a reference catalogue (evaluation.py).

Layer 6, command line: imports layers 1-6 only.
"""

import json

import click

from ..errors import SeamountaeError
from . import options


@click.command("evaluate")
@click.argument("catalogue_path", metavar="CATALOGUE", type=click.Path(dir_okay=False))
@click.argument("reference_path", metavar="REFERENCE", type=click.Path(dir_okay=False))
@options.params("evaluate")
@options.old_spelling("--min-height", "min_height_m")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON on stdout.")
@options.common
def command(catalogue_path, reference_path, match_km, match_radius_factor, min_height_m, old_min_height_m, as_json, config_file):
    """Score a found catalogue against a reference: precision, recall, F1, misses, false detections.

    Matching is one-to-one, nearest pair first. Precision is a lower bound when the reference is
    incomplete: a real but uncatalogued seamount counts as a false detection.

    \b
    Example:
      seamountae evaluate seamounts.geojson reference.csv --min-height-m 500 --match-km 15
    """
    min_height_m = options.earlier(min_height_m, old_min_height_m)
    from ..catalogue import read_catalogue
    from ..evaluation import evaluate, format_report
    from ..pipeline import evaluation_arguments

    if match_km is not None and match_radius_factor is not None:
        raise SeamountaeError("--match-km and --match-radius-factor: give one tolerance, not both")
    if match_km is not None:  # a tolerance given here replaces the config file's, whichever kind it was
        match_radius_factor = 0.0
    elif match_radius_factor is not None:
        match_km = None
    params = options.parameters("evaluate", config_file, match_km=match_km, match_radius_factor=match_radius_factor,
                                min_height_m=min_height_m)
    result = evaluate(read_catalogue(catalogue_path), read_catalogue(reference_path), **evaluation_arguments(params))
    click.echo(json.dumps(result, indent=1) if as_json else format_report(result))
