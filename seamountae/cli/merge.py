"""`seamountae merge`: the parts of a score run in parts joined into one score file (parts.py).

Layer 6, command line: imports layers 1-6 only.
"""

import click

from . import options, summary


@click.command("merge")
@click.argument("parts", metavar="PART...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@options.output
@options.overwrite
@options.quiet
@options.verbose
def command(parts, output, overwrite):
    """Join the parts of a tiled score (`seamountae score --tiles N --tile-index I`) into one SCORE.nc.

    The parts must come from one run (same grid, model, parameters and seamountae version), every
    tile once; the merged file equals the file a single `seamountae score` writes.

    \b
    Example:
      seamountae merge part_*.nc -o score.nc
    """
    from ..parts import merge

    counts = merge(parts, output, overwrite)
    summary(f"{output}: merged {counts['parts']} parts ({counts['rows']} x {counts['cols']} cells)")
