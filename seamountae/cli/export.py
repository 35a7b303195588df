"""`seamountae export`: a detections file as a GeoJSON, CSV, GMT or KML catalogue, with footprints (pipeline.export_file).

Layer 6, command line: imports layers 1-6 only.
"""

import click

from ..config import CATALOGUE_FORMATS
from ..outputs import check_writable
from . import options, summary


@click.command("export")
@click.argument("detections_path", metavar="DETECTIONS", type=click.Path(dir_okay=False))
@options.param("export", "format", type=click.Choice(["auto", *CATALOGUE_FORMATS]))
@click.option("--footprints", type=click.Path(dir_okay=False), default=None,
              help="Also write each seamount's footprint as a GeoJSON Polygon to this file.")
@options.output
@options.overwrite
@options.common
def command(detections_path, format, footprints, output, overwrite, config_file):
    """Write detected seamounts as a GeoJSON (RFC 7946), CSV, GMT text or KML (Google Earth) catalogue.

    One point per seamount at its summit, with id, lon, lat, summit_depth_m, height_m,
    basal_radius_km, area_km2 and score. The format follows the suffix (.geojson, .csv, .txt, .kml;
    any other needs --format). The GeoJSON opens in QGIS; the GMT text (whitespace columns, lon lat
    first, a # header) feeds `gmt plot` and `gmt text`; the KML opens in Google Earth.

    \b
    Example:
      seamountae export detections.nc -o seamounts.geojson --footprints footprints.geojson
      seamountae export detections.nc -o seamounts.txt          # GMT: gmt plot seamounts.txt -Sc0.2c
      seamountae export detections.nc -o seamounts.kml          # Google Earth
    """
    from ..pipeline import export_file

    check_writable(output, overwrite)
    fmt = options.parameters("export", config_file, format=format)["format"]
    table = export_file(detections_path, output, fmt, overwrite, footprints=footprints)
    summary(f"{output}: {len(table)} seamounts" + (f"; footprints in {footprints}" if footprints else ""))
