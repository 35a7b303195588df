import click

from ..outputs import check_writable
from ..pipeline import detect_file
from . import options, summary


@click.command("detect")
@click.argument("score_path", metavar="SCORE", type=click.Path())
@click.option("--threshold", default=None, help="Minimum score (0..1) of seamount-like cells, or auto (0.05).  [default: auto]")
@click.option("--min-relief-m", type=float, default=None, help="Minimum patch relief of seamount-like cells.  [default: 200]")
@click.option("--min-height-m", type=float, default=None, help="Minimum height of a reported seamount.  [default: 200]")
@options.output
@options.overwrite
@options.common
def command(score_path, threshold, min_relief_m, min_height_m, output, overwrite, config_file):
    """Threshold and cluster a score map into seamounts, one per summit.

    \b
    Example:
      seamountae detect score.nc -o detections.nc --threshold auto
    """
    check_writable(output, overwrite)
    params = options.parameters("detect", config_file, threshold=threshold, min_relief_m=min_relief_m, min_height_m=min_height_m)
    table = detect_file(score_path, output, params, overwrite)
    summary(f"{output}: {len(table)} seamounts")
