"""Options shared by every command, so that each means the same thing everywhere."""

from __future__ import annotations

import logging
import sys

import click

from ..config import resolve


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value:
        state = ctx.ensure_object(dict)
        state[param.name] = value
        level = logging.DEBUG if state.get("verbose", 0) > 1 else logging.INFO if state.get("verbose") else logging.WARNING
        if state.get("quiet"):
            level = logging.ERROR
        logging.getLogger("seamountae").setLevel(level)
    return value


def _validate_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None or value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise click.BadParameter(f"{value!r}: use auto, cpu, cuda or cuda:N")


output = click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Output file.")
overwrite = click.option("--overwrite", is_flag=True, help="Replace the output if it exists.")
config = click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                      help="TOML file of parameters (see `seamountae config --template`); options given here override it.")
device = click.option("--device", default=None, callback=_validate_device,
                      help="auto (CUDA if present, else CPU), cpu, cuda or cuda:N.  [default: auto]")
seed = click.option("--seed", type=int, default=None, help="Random seed.  [default: 0]")
verbose = click.option("-v", "--verbose", count=True, expose_value=False, callback=_set_verbosity, is_eager=True,
                       help="More log messages on stderr (-vv for debug, and tracebacks on errors).")
quiet = click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_set_verbosity, is_eager=True,
                     help="Only errors on stderr; no progress bars.")


def common(command):
    """--config, -v, -q: on every command."""
    for option in (quiet, verbose, config):
        command = option(command)
    return command


def show_progress() -> bool:
    state = click.get_current_context().find_root().ensure_object(dict)
    return not state.get("quiet") and sys.stderr.isatty()


def parameters(stage: str, config_file, **given) -> dict:
    return resolve(stage, config_file, given)
