import logging

import click

from ..catalogue import points_inside, read_catalogue
from ..errors import SeamountaeError
from ..grid import cell_size_km, read_grid
from ..outputs import check_writable, provenance, write_netcdf
from ..patches import tile
from . import options

log = logging.getLogger("seamountae")


def grid_options(command):
    """How to read a grid: shared by tile and score."""
    command = click.option("--var", default=None, help="Variable of a netCDF grid holding several 2-D variables.")(command)
    command = click.option("--depth-positive/--elevation-positive", "depth_positive", default=None,
                           help="The grid holds depth (positive down) / elevation. [default: from the file's attributes]")(command)
    return command


def load_grid(path, var, depth_positive, config_file=None):
    """Read the grid with the [grid] parameters: options given here over the config file over defaults."""
    params = options.parameters("grid", config_file, var=var, depth_positive=depth_positive)
    depth = params["depth_positive"]
    return read_grid(path, var=params["var"] or None, depth_positive=None if depth == "auto" else depth,
                     mask_land=params["mask_land"])


def check_grid_fits(grid, grid_path, patch_km: float, whose: str = "") -> None:
    """A grid narrower than one patch has nothing to learn from or score: say so before any work."""
    dy_km, dx_km = cell_size_km(grid)
    height_km, width_km = grid.sizes["y"] * dy_km, grid.sizes["x"] * dx_km
    if min(height_km, width_km) < patch_km:
        raise SeamountaeError(f"{grid_path}: the grid ({height_km:.0f} x {width_km:.0f} km) is smaller than one "
                              f"{patch_km:g} km patch{whose}; use a larger grid" + ("" if whose else " or a smaller --patch-km"))


@click.command("tile")
@click.argument("grid_path", metavar="GRID", type=click.Path(dir_okay=False))
@click.option("--catalogue", "catalogue_path", required=True, type=click.Path(dir_okay=False),
              help="Known seamounts: CSV with lon/lat columns, GeoJSON points, or GMT text (lon lat first).")
@click.option("--patch-km", type=float, default=None, help="Patch width in km.  [default: 48]")
@click.option("--patch-px", type=int, default=None, help="Patch width in pixels after resampling.  [default: 32]")
@click.option("--shifts-px", type=int, default=None, help="Also cut patches up to N pixels off-centre.  [default: 1]")
@grid_options
@options.output
@options.overwrite
@options.common
def command(grid_path, catalogue_path, patch_km, patch_px, shifts_px, var, depth_positive, output, overwrite, config_file):
    """Cut training patches centred on catalogued seamounts.

    Patches are PATCH_KM wide whatever the grid spacing, resampled to PATCH_PX pixels; seamounts
    outside the grid are skipped with a count.

    \b
    Example:
      seamountae tile sample_data/azores_west.nc --catalogue sample_data/azores_west_seamounts.csv -o patches.nc
    """
    check_writable(output, overwrite)
    params = options.parameters("tile", config_file, patch_km=patch_km, patch_px=patch_px, shifts_px=shifts_px)
    grid = load_grid(grid_path, var, depth_positive, config_file)
    check_grid_fits(grid, grid_path, params["patch_km"])
    catalogue = read_catalogue(catalogue_path)
    inside, skipped = points_inside(catalogue, float(grid.x[0]), float(grid.x[-1]), float(grid.y[0]), float(grid.y[-1]),
                                    geographic=bool(grid.attrs.get("geographic")))
    if inside.empty:
        raise SeamountaeError(f"{catalogue_path}: none of its {len(catalogue)} points lies inside {grid_path}; "
                              "check the catalogue's coordinates (lon, lat order) or use the matching grid")
    if skipped:
        log.warning("%s: %d of %d seamounts lie outside the grid and were skipped", catalogue_path, skipped, len(catalogue))
    patches = tile(grid, inside, **params)
    record = provenance(params, {"grid": grid_path, "catalogue": catalogue_path})
    write_netcdf(patches, output, overwrite, record)
    click.echo(f"{output}: {patches.sizes['sample']} patches from {patches.attrs['n_seamounts']} seamounts", err=True)
