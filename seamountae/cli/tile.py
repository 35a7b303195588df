import click

from . import options, summary


def grid_options(command):
    """How to read a grid: shared by tile and score."""
    command = click.option("--var", default=None, help="Variable of a netCDF grid holding several 2-D variables.")(command)
    command = click.option("--depth-positive/--elevation-positive", "depth_positive", default=None,
                           help="The grid holds depth (positive down) / elevation. [default: from the file's attributes]")(command)
    return command


def load_grid(path, var, depth_positive, config_file=None):
    """Read the grid with the [grid] parameters: options given here over the config file over defaults."""
    from ..grid import read_grid
    from ..pipeline import grid_kwargs

    return read_grid(path, **grid_kwargs(options.parameters("grid", config_file, var=var, depth_positive=depth_positive)))


@click.command("tile")
@click.argument("grid_path", metavar="GRID", type=click.Path(dir_okay=False))
@click.option("--catalogue", "catalogue_path", required=True, type=click.Path(dir_okay=False),
              help="Known seamounts: CSV with lon/lat columns, GeoJSON points, or GMT text (lon lat first).")
@click.option("--patch-km", type=float, default=None, help="Patch width in km.  [default: 48]")
@click.option("--patch-px", type=int, default=None, help="Patch width in pixels after resampling.  [default: 32]")
@click.option("--shifts-px", type=int, default=None, help="Also cut patches up to N pixels off-centre.  [default: 1]")
@click.option("--min-height-m", type=float, default=None,
              help="A candidate summit (and a training seamount) stands at least this high above its surroundings.  [default: 300]")
@grid_options
@options.output
@options.overwrite
@options.common
def command(grid_path, catalogue_path, patch_km, patch_px, shifts_px, min_height_m, var, depth_positive, output,
            overwrite, config_file):
    """Cut training patches centred on catalogued seamounts, and the grid's candidates to calibrate on.

    Each seamount's patch is sized to it (radius_ratio basal radii, within window_km) and resampled
    to PATCH_PX pixels whatever the grid spacing; seamounts outside the grid are skipped with a count.

    \b
    Example:
      seamountae tile sample_data/azores_west.nc --catalogue sample_data/azores_west_seamounts.csv -o patches.nc
    """
    from ..pipeline import grid_kwargs, tile_file

    from ..outputs import check_writable

    check_writable(output, overwrite)
    params = options.parameters("tile", config_file, patch_km=patch_km, patch_px=patch_px, shifts_px=shifts_px,
                                min_height_m=min_height_m)
    grid_params = options.parameters("grid", config_file, var=var, depth_positive=depth_positive)
    patches = tile_file(grid_path, catalogue_path, output, params, grid_params, overwrite)
    summary(f"{output}: {patches.sizes['sample']} patches from {patches.attrs['n_seamounts']} seamounts, "
            f"{patches.sizes['candidate']} candidates to calibrate on")
