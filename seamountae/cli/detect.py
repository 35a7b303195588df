"""`seamountae detect`: the seamounts of a score file, by the model's threshold (pipeline.detect_file).

Layer 6, command line: imports layers 1-6 only.
"""

import click

from ..outputs import check_writable
from . import options, summary


@click.command("detect")
@click.argument("score_path", metavar="SCORE", type=click.Path())
@options.params("detect")
@options.output
@options.overwrite
@options.common
def command(score_path, output, overwrite, config_file, **values):
    """Report the candidates whose seamount score passes the threshold, one per edifice.

    \b
    Example:
      seamountae detect score.nc -o detections.nc --threshold auto
    """
    from ..pipeline import detect_file

    check_writable(output, overwrite)
    params = options.parameters("detect", config_file, **options.given("detect", values))
    table = detect_file(score_path, output, params, overwrite)
    summary(f"{output}: {len(table)} seamounts")
