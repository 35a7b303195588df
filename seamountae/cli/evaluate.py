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
@click.option("--region", metavar="W/E/S/N", default=None,
              help="Count the reference inside this box (degrees, GMT -R order; E may pass 180) instead of the searched grid.")
@click.option("--no-clip", is_flag=True, help="Count every reference entry, wherever it lies.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON on stdout.")
@options.common
def command(catalogue_path, reference_path, match_km, match_radius_factor, min_height_m, old_min_height_m, region,
            no_clip, as_json, config_file):
    """Score a found catalogue against a reference: precision, recall, F1, misses, false detections.

    Matching is one-to-one, nearest pair first. Recall counts only the reference entries inside the
    area searched: the grid named in the catalogue's provenance (its valid cells, the match distance
    in from gaps, land and edges), so a global census such as KWSMTSv01.txt can be the reference;
    --region or --no-clip say otherwise. Entries outside can still confirm a detection. Precision is
    a lower bound when the reference is incomplete: a real but uncatalogued seamount counts as false.

    \b
    Example:
      seamountae evaluate seamounts.geojson KWSMTSv01.txt --min-height-m 500
      seamountae evaluate seamounts.csv reference.csv --region 166/169/8/10 --match-km 15
    """
    min_height_m = options.earlier(min_height_m, old_min_height_m)
    from ..evaluation import format_report
    from ..geometry import parse_region
    from ..pipeline import evaluate_files

    if region is not None and no_clip:
        raise SeamountaeError("--region and --no-clip: give one, not both")
    region = parse_region(region) if region is not None else None
    if match_km is not None and match_radius_factor is not None:
        raise SeamountaeError("--match-km and --match-radius-factor: give one tolerance, not both")
    if match_km is not None:  # a tolerance given here replaces the config file's, whichever kind it was
        match_radius_factor = 0.0
    elif match_radius_factor is not None:
        match_km = None
    params = options.parameters("evaluate", config_file, match_km=match_km, match_radius_factor=match_radius_factor,
                                min_height_m=min_height_m)
    result = evaluate_files(catalogue_path, reference_path, params, region=region, clip=not no_clip)
    click.echo(json.dumps(result, indent=1) if as_json else format_report(result))
