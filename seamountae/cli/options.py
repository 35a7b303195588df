"""Options shared by every command, so that each means the same thing everywhere.

Layer 6, command line: imports layers 1-6 only.
"""

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


def validate_device(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
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
device = click.option("--device", default=None, callback=validate_device,
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


# ------------------------------------------------------------------------ options from the parameter table


def _shown(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value) if value != "" else "none"


def _list_of(kind):
    """Parse "a,b,c" into a list of `kind` (numbers or names), as a config file's list."""
    def parse(ctx: click.Context, param: click.Parameter, value):
        if value is None:
            return None
        try:
            return [kind(v.strip()) for v in str(value).split(",") if v.strip()]
        except ValueError:
            raise click.BadParameter(f"{value!r}: give {'numbers' if kind is float else 'names'} separated by commas")
    return parse


def param(stage: str, name: str, *aliases: str, **overrides):
    """The command-line option of parameter `stage.name`: --name-with-dashes (and `aliases`, hidden from
    the help only in that they are listed after it), its type and its help ("comment.  [default: …]")
    from config.PARAMETERS, so no help text can drift from the default."""
    from ..config import PARAMETERS

    value, comment = PARAMETERS[stage][name]
    flag = "--" + name.replace("_", "-")
    settings = {"default": None, "help": f"{comment[0].upper()}{comment[1:]}.  [default: {_shown(value)}]"}
    if isinstance(value, bool):
        flags = [f"{flag}/--no-{flag[2:]}"]
    elif isinstance(value, list) and len(value) == 2 and name.endswith("_km"):
        flags, settings["nargs"], settings["type"] = [flag], 2, float
        settings["help"] = settings["help"].replace(_shown(value), " ".join(str(v) for v in value))
    elif isinstance(value, list):
        flags, settings["callback"] = [flag], _list_of(str if value and isinstance(value[0], str) else float)
        settings["metavar"] = "A,B,..."
    else:
        flags = [flag]
        settings["type"] = {int: int, float: float}.get(type(value), str)
    settings.update(overrides)
    return click.option(*flags, *aliases, name, **settings)


def params(stage: str, *names: str, skip: tuple[str, ...] = ()):
    """`param` for each of `names` (default: every parameter of the stage but `skip`)."""
    from ..config import PARAMETERS

    chosen = names or tuple(n for n in PARAMETERS[stage] if n not in skip)

    def decorate(command):
        for name in reversed(chosen):
            command = param(stage, name)(command)
        return command

    return decorate


def given(stage: str, values: dict) -> dict:
    """The options of `stage` among a command's keyword arguments (None where not given)."""
    from ..config import PARAMETERS

    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items() if k in PARAMETERS[stage]}


def old_spelling(flag: str, name: str):
    """A hidden option under an earlier name of parameter option `name`, kept working: the command
    gets it as `old_<name>` and takes `earlier(new, old)`."""
    return click.option(flag, f"old_{name}", type=float, default=None, hidden=True)


def earlier(value, old):
    """A parameter's value: as given under its name, else under its old spelling."""
    return old if value is None else value
