"""The `seamountae` command: one module per command, each a thin layer over a library function.

Layer 6, command line: imports layers 1-6 only.
"""

from __future__ import annotations

import logging
import signal
import traceback

import click

from .. import __version__
from ..errors import SeamountaeError
from ..outputs import set_command, signalled
from ..progress import log_to_stderr
from . import options


class SeamountaeGroup(click.Group):
    """Turns the project's errors into one line on stderr and a non-zero exit (tracebacks with -vv)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Provenance records this command line, whoever runs it (a shell, a test, a notebook).
        set_command(["seamountae", *args])
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Every command with its whole first sentence (click cuts it to the terminal's width)."""
        rows = [(name, self.get_command(ctx, name).get_short_help_str(limit=200)) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows, col_max=12)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SeamountaeError as exc:
            if ctx.ensure_object(dict).get("verbose", 0) > 1:
                traceback.print_exc()
            click.echo(f"seamountae: error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt as stop:
            # Every output is written to a temporary file renamed into place when complete: the one
            # being written is gone, finished ones are whole.
            killed = isinstance(stop, Terminated)
            click.echo(f"seamountae: {'terminated' if killed else 'interrupted'}; the output being written was discarded",
                       err=True)
            ctx.exit(143 if killed else 130)  # 128 + the signal, as a shell reports it
        finally:
            set_command(None)


def summary(message: str) -> None:
    """A command's one-line report of what it wrote, on stderr (silenced by -q)."""
    if not click.get_current_context().find_root().ensure_object(dict).get("quiet"):
        click.echo(message, err=True)


@click.group(cls=SeamountaeGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="seamountae")
@options.quiet
@options.verbose
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Find seamounts in bathymetry grids.

    \b
    From a grid to a catalogue, with the built-in model:
      seamountae find GRID -o seamounts.geojson

    \b
    The pipeline, one command per stage (train your own model on a catalogue):
      seamountae tile GRID --catalogue CAT -o patches.nc
      seamountae train patches.nc -o model.pt
      seamountae score GRID --model model.pt -o score.nc
      seamountae detect score.nc -o detections.nc
      seamountae export detections.nc -o seamounts.geojson
      seamountae plot score.nc --detections detections.nc -o map.png

    \b
    Or all of it from one config file, skipping what is up to date:
      seamountae run configs/demo.toml
    """
    state = ctx.ensure_object(dict)
    # -q/-v given here have set the level already
    log_to_stderr(None if state.get("quiet") or state.get("verbose") else logging.WARNING)


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, a batch scheduler's time limit): unwinds as Ctrl-C does, removing the output
    being written, and exits 143."""


def _terminate(signum, frame):
    signalled(Terminated)
    raise Terminated


def _interrupt(signum, frame):
    signalled(KeyboardInterrupt)
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where SIGINT is ignored (nohup, &)
        signal.signal(signal.SIGINT, _interrupt)
    cli(prog_name="seamountae")


from . import config_cmd, detect, evaluate, export, find, merge, models, plot, run, score, similar, synth, tile, train  # noqa: E402

for module in (find, synth, tile, train, score, merge, detect, export, evaluate, similar, plot, run, config_cmd, models):
    cli.add_command(module.command)
