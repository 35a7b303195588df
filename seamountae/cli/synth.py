from pathlib import Path

import click

from .. import synth as synthetic
from ..catalogue import write_csv
from ..errors import SeamountaeError
from ..grid import write_grid
from ..outputs import check_writable, provenance
from . import options


@click.command("synth")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for grid.nc and truth.csv (created if missing).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--scenario", type=click.Choice(synthetic.SCENARIOS), default="plain", show_default=True,
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
    click.echo(f"{out / 'grid.nc'}: {grid.shape[0]}×{grid.shape[1]} cells; {out / 'truth.csv'}: {len(truth)} seamounts", err=True)
