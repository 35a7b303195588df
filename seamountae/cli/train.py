"""`seamountae train`: the autoencoder trained and calibrated on patch files (pipeline.train_file).

Layer 6, command line: imports layers 1-6 only.
"""

import logging

import click

from ..errors import SeamountaeError
from ..outputs import check_writable
from . import options, summary

log = logging.getLogger("seamountae")


@click.command("train")
@click.argument("patches_paths", metavar="PATCHES...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@options.params("train", skip=("device",))
@options.param("train", "device", callback=options.validate_device)
@click.option("--threads", type=int, default=None,
              help="CPU threads for torch and for BLAS/OpenMP (numpy's calibration).  [default: all cores]")
@click.option("--resume", is_flag=True,
              help="Continue an interrupted run from its checkpoint (MODEL.pt.ckpt); same patches and parameters.")
@options.output
@options.overwrite
@options.common
def command(patches_paths, threads, resume, output, overwrite, config_file, **values):
    """Train the autoencoder on seamount patches and calibrate its score by cross-fitting.

    Several PATCHES files (of several grids and catalogues, tiled with the same parameters) train
    one model.

    After every epoch a checkpoint is saved beside the model (MODEL.pt.ckpt); if training is
    interrupted (Ctrl-C, a killed job), the same command with --resume continues from it and
    gives the same model as an uninterrupted run. The checkpoint is deleted once MODEL.pt is
    written.

    \b
    Example:
      seamountae train patches.nc -o model.pt --epochs 40 --device auto
      seamountae train patches.nc -o model.pt --epochs 40 --resume   # after an interruption
    """
    import torch
    from .. import distributed
    from ..pipeline import train_file
    from ..training import checkpoint_path

    check_writable(output, overwrite)
    params = options.parameters("train", config_file, **options.given("train", values))
    options.check_device(params["device"])
    if threads is not None:
        if threads < 1:
            raise SeamountaeError(f"--threads {threads}: must be 1 or more")
        torch.set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    try:
        # torch's own threads above; BLAS's and OpenMP's (numpy's calibration arithmetic) here.
        with threadpool_limits(limits=threads):
            meta = train_file(patches_paths, output, params, overwrite, resume=resume, progress=options.show_progress())
    except KeyboardInterrupt:
        if checkpoint_path(output).exists() and distributed.rank() == 0:
            click.echo(f"seamountae: training stopped; continue it with the same command and --resume "
                       f"(checkpoint {checkpoint_path(output)})", err=True)
        raise
    if distributed.rank() != 0:  # under torchrun: one summary, from the process that wrote the model
        return
    t = meta["threshold"]
    summary(f"{output}: trained on {meta['training']['n_patches']} patches of {meta['training']['n_seamounts']} seamounts; "
            f"threshold auto = {t['value']:.3f} (calibration F1 {t['f1']:.3f})")
