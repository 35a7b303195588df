import click
import torch

from ..errors import SeamountaeError
from ..outputs import atomic_output, check_writable, provenance, read_netcdf
from ..training import save_model, train
from . import options


@click.command("train")
@click.argument("patches_path", metavar="PATCHES", type=click.Path(dir_okay=False))
@click.option("--epochs", type=int, default=None, help="Passes over the patches.  [default: 40]")
@click.option("--latent", type=int, default=None, help="Bottleneck size.  [default: 16]")
@click.option("--learning-rate", type=float, default=None, help="Peak learning rate.  [default: 0.002]")
@click.option("--threads", type=int, default=None, help="CPU threads for torch.  [default: all cores]")
@options.seed
@options.device
@options.output
@options.overwrite
@options.common
def command(patches_path, epochs, latent, learning_rate, threads, seed, device, output, overwrite, config_file):
    """Train the autoencoder on seamount patches and calibrate its score on held-out seamounts.

    \b
    Example:
      seamountae train patches.nc -o model.pt --epochs 40 --device auto
    """
    check_writable(output, overwrite)
    params = options.parameters("train", config_file, epochs=epochs, latent=latent, learning_rate=learning_rate,
                                seed=seed, device=device)
    options.check_device(params["device"])
    if threads is not None:
        if threads < 1:
            raise SeamountaeError(f"--threads {threads}: must be 1 or more")
        torch.set_num_threads(threads)
    patches = read_netcdf(patches_path, "patches", "tile")
    model, meta = train(patches, progress=options.show_progress(), **params)
    meta["provenance"] = provenance(params, {"patches": patches_path})
    with atomic_output(output, overwrite) as tmp:
        save_model(model, meta, tmp)
    cal = meta["calibration"]
    click.echo(f"{output}: trained on {meta['training']['n_patches']} patches; score calibrated on "
               f"{cal['n_seamounts']} held-out seamounts", err=True)
