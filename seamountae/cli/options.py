"""Options shared by every command, so that each means the same thing everywhere."""

from __future__ import annotations

import logging
import sys

import click

from ..config import resolve
from ..errors import SeamountaeError


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: int) -> int:
    if value:
        state = ctx.ensure_object(dict)
        state[param.name] = value
        level = logging.DEBUG if state.get("verbose", 0) > 1 else logging.INFO if state.get("verbose") else logging.WARNING
        if state.get("quiet"):
            level = logging.ERROR
        logging.getLogger("seamountae").setLevel(level)
    return value


def device_problem(value: str) -> str | None:
    """Why `value` cannot be used as a torch device here (None if it can)."""
    if not (value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit())):
        return f"{value!r}: use auto, cpu, cuda or cuda:N"
    if value.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return f"{value!r}: CUDA is not available on this machine; use --device cpu or auto"
        if value[5:] and int(value[5:]) >= torch.cuda.device_count():
            return f"{value!r}: this machine has {torch.cuda.device_count()} CUDA device(s), numbered from 0"
    return None


def _validate_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    problem = None if value is None else device_problem(value)
    if problem and "use auto, cpu" in problem:
        raise click.BadParameter(problem)  # a misspelt option: click's usage message
    if problem:
        raise SeamountaeError(f"--device {problem}")  # the machine lacks it: the one-line error
    return value


def check_device(value: str) -> str:
    """The resolved device (from an option or a config file), or a one-line error if unusable."""
    problem = device_problem(value)
    if problem:
        raise SeamountaeError(f"device {problem}")
    return value


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
