"""`seamountae models`: the card of a model file, or of the built-in model (models/).

Layer 6, command line: imports layers 1-6 only.
"""

import click

from . import options


@click.command("models")
@click.argument("model_paths", metavar="[MODEL.pt...]", nargs=-1, type=click.Path(dir_okay=False))
@options.common
def command(model_paths, config_file):
    """Describe models: what each was trained on, its rules, its threshold and where not to trust it.

    Without arguments, the built-in model that `find` and `score` use when no --model is given
    (the README's model card adds its benchmark figures).

    \b
    Examples:
      seamountae models
      seamountae models model.pt
    """
    from ..models import BUILTIN, card
    from ..model import read_model

    for path in model_paths or (BUILTIN,):
        click.echo(card(read_model(path)[1], path))
