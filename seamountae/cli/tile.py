"""`seamountae tile`: training patches and labelled candidates of a grid and its catalogue (pipeline.tile_file).

Layer 6, command line: imports layers 1-6 only.
"""

import click

from ..config import MATCH_KM
from . import options, summary


def grid_options(command):
    """How to read a grid ([grid]): shared by tile, score, find and evaluate."""
    command = options.param("grid", "islands")(command)
    command = options.param("grid", "crs", metavar="CRS")(command)
    command = options.param("grid", "mask_land")(command)
    command = click.option("--depth-positive/--elevation-positive", "depth_positive", default=None,
                           help="The grid holds depth (positive down) / elevation. [default: from the file's attributes]")(command)
    return options.param("grid", "var")(command)


@click.command("tile")
@click.argument("grid_path", metavar="GRID", type=click.Path(dir_okay=False))
@click.option("--catalogue", "catalogue_paths", required=True, multiple=True, type=click.Path(dir_okay=False),
              help="Known seamounts: CSV with lon/lat columns, GeoJSON points, or GMT text (lon lat first). "
                   f"Repeat it to join catalogues: an entry within {MATCH_KM:g} km of an earlier one's is counted once.")
@options.params("tile")
@grid_options
@options.output
@options.overwrite
@options.common
def command(grid_path, catalogue_paths, output, overwrite, config_file, **values):
    """Cut training patches centred on catalogued seamounts, and the grid's candidates to calibrate on.

    Each seamount's patch is sized to it (radius_ratio basal radii, within window_km) and resampled
    to PATCH_PX pixels whatever the grid spacing; seamounts outside the grid are skipped with a count.

    \b
    Example:
      seamountae tile sample_data/azores_west.nc --catalogue sample_data/azores_west_seamounts.csv -o patches.nc
      seamountae tile gebco_tile.tif --catalogue KWSMTSv01.txt --catalogue yesson2019_seamounts.csv -o patches.nc
    """
    from ..outputs import check_writable
    from ..pipeline import tile_file

    check_writable(output, overwrite)
    params = options.parameters("tile", config_file, **options.given("tile", values))
    grid_params = options.parameters("grid", config_file, **options.given("grid", values))
    patches = tile_file(grid_path, catalogue_paths, output, params, grid_params, overwrite, progress=options.show_progress())
    summary(f"{output}: {patches.sizes['sample']} patches from {patches.attrs['n_seamounts']} seamounts, "
            f"{patches.sizes['candidate']} candidates to calibrate on")
