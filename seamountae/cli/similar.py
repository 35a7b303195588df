"""`seamountae similar`: a catalogue's seamounts ranked by shape against one of them (shapes.similar).

Layer 6, command line: imports layers 1-6 only.
"""

import click

from . import options


@click.command("similar")
@click.argument("catalogue_path", metavar="CATALOGUE", type=click.Path(dir_okay=False))
@click.argument("seamount_id", metavar="ID")
@click.option("-n", "--number", default=10, show_default=True, type=click.IntRange(min=1),
              help="How many of the most similar seamounts to list.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the ranking as CSV.")
@options.common
def command(catalogue_path, seamount_id, number, as_csv, config_file):
    """Rank a catalogue's seamounts by how alike their shape is to seamount ID's.

    The distance is between the seamounts' standardised latent codes (shape_code_1..N, which every
    catalogue written by `export` or `find` carries): the autoencoder's description of each
    edifice's own-scale patch, whatever its height in metres.

    \b
    Example:
      seamountae similar seamounts.geojson 12 -n 5
    """
    from ..catalogue import read_catalogue
    from ..shapes import similar

    ranked = similar(read_catalogue(catalogue_path), seamount_id, str(catalogue_path)).head(number)
    if as_csv:
        click.echo(ranked.to_csv(index=False, lineterminator="\n"), nl=False)
    else:
        click.echo(ranked.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
