import click

from ..outputs import check_writable
from ..pipeline import export_file
from . import options, summary


@click.command("export")
@click.argument("detections_path", metavar="DETECTIONS", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["geojson", "csv"]), default=None,
              help="Output format.  [default: from the file name, else geojson]")
@options.output
@options.overwrite
@options.common
def command(detections_path, fmt, output, overwrite, config_file):
    """Write detected seamounts as a GeoJSON (RFC 7946) or CSV catalogue.

    One point per seamount at its summit, with id, lon, lat, summit_depth_m, height_m,
    basal_radius_km, area_km2 and score. The GeoJSON opens in QGIS; `seamountae plot` draws it.

    \b
    Example:
      seamountae export detections.nc -o seamounts.geojson
      seamountae export detections.nc -o seamounts.csv --format csv
    """
    check_writable(output, overwrite)
    if fmt is None:
        fmt = "csv" if str(output).lower().endswith(".csv") else options.parameters("export", config_file)["format"]
    table = export_file(detections_path, output, fmt, overwrite)
    summary(f"{output}: {len(table)} seamounts")
