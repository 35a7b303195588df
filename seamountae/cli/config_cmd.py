"""`seamountae config`: print every parameter with its default, as a TOML template.

Layer 6, command line: imports layers 1-6 only.
"""

import click

from ..config import template
from . import options


@click.command("config")
@click.option("--template", "show_template", is_flag=True, help="Print every parameter with its default as TOML.")
@options.common
def command(show_template, config_file):
    """Show the configuration: every parameter's default, or a config file resolved over the defaults.

    \b
    Example:
      seamountae config --template > my.toml
    """
    if show_template or not config_file:
        click.echo(template())
        return
    from ..config import PARAMETERS, resolve, toml_value

    for stage in PARAMETERS:
        click.echo(f"[{stage}]")
        for key, value in resolve(stage, config_file, {}).items():
            click.echo(f"{key} = {toml_value(value)}")
        click.echo("")
