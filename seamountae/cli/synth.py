"""`seamountae synth`: a synthetic grid and its true seamounts (synth.py).

Layer 6, command line: imports layers 1-6 only.
"""

from pathlib import Path

import click

from ..errors import SeamountaeError
from ..outputs import check_writable, provenance
from . import options, summary


class _Scenarios(click.Choice):
    """synth.SCENARIOS, looked up only when an option is checked or shown: the CLI starts without numpy."""

    def __init__(self):
        super().__init__(())

    @property
    def choices(self):
        from ..synth import SCENARIOS

        return SCENARIOS

    @choices.setter
    def choices(self, value):
        pass


@click.command("synth")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for grid.nc and truth.csv (created if missing).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--scenario", type=_Scenarios(), default="plain", show_default=True,
              help="Background and confounders.")
@click.option("--n-seamounts", type=int, default=None, help="How many seamounts to plant (0: none).  [default: by area]")
@click.option("--size", "shape", type=(int, int), default=(300, 400), show_default=True, help="Grid rows and columns.")
@options.overwrite
@options.common
def command(out_dir, seed, scenario, n_seamounts, shape, overwrite, config_file):
    """Make a synthetic grid with planted seamounts: DIR/grid.nc and DIR/truth.csv.

    \b
    Example:
      seamountae synth -o synthetic --seed 3 --scenario fabric
    """
    from .. import synth as synthetic
    from ..catalogue import write_csv
    from ..grid import write_grid

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, or no permission
        raise SeamountaeError(f"{out}: cannot create the output folder ({exc.strerror or exc}); choose another -o") from None
    for name in ("grid.nc", "truth.csv"):
        check_writable(out / name, overwrite)
    grid, truth = synthetic.synthesize(seed=seed, scenario=scenario, n_seamounts=n_seamounts, shape=tuple(shape))
    record = provenance({"seed": seed, "scenario": scenario, "n_seamounts": n_seamounts, "shape": list(shape)})
    write_grid(grid, out / "grid.nc", overwrite=overwrite, attrs={"seamountae_scenario": scenario})
    write_csv(truth, out / "truth.csv", provenance=record, overwrite=overwrite)
    summary(f"{out / 'grid.nc'}: {grid.shape[0]}×{grid.shape[1]} cells; {out / 'truth.csv'}: {len(truth)} seamounts")
