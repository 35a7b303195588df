import click

from ..outputs import check_writable
from . import options, summary


@click.command("detect")
@click.argument("score_path", metavar="SCORE", type=click.Path())
@click.option("--threshold", default=None,
              help="Minimum seamount score (0..1) of a reported candidate, or auto (the model's own).  [default: auto]")
@click.option("--min-height-m", type=float, default=None,
              help="Report only seamounts at least this high (0: all the model's candidates).  [default: 0]")
@options.output
@options.overwrite
@options.common
def command(score_path, threshold, min_height_m, output, overwrite, config_file):
    """Report the candidates whose seamount score passes the threshold, one per edifice.

    \b
    Example:
      seamountae detect score.nc -o detections.nc --threshold auto
    """
    from ..pipeline import detect_file

    check_writable(output, overwrite)
    params = options.parameters("detect", config_file, threshold=threshold, min_height_m=min_height_m)
    table = detect_file(score_path, output, params, overwrite)
    summary(f"{output}: {len(table)} seamounts")
