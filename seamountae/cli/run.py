"""`seamountae run`: the whole chain from one config file, skipping what is up to date (pipeline.run).

Layer 6, command line: imports layers 1-6 only.
"""

import json

import click

from ..config import resolve
from . import options, summary


@click.command("run")
@click.argument("config_path", metavar="CONFIG.toml", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Run every stage, even those whose outputs are up to date.")
@click.option("--overwrite", is_flag=True,
              help="Replace files under the output names that seamountae did not write (its own stale outputs are always replaced).")
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation (with a reference) as JSON on stdout.")
@options.quiet
@options.verbose
def command(config_path, force, overwrite, as_json):
    """Run the whole chain, tile → train → score → detect → export (→ evaluate, plot), from one file.

    CONFIG.toml has a [run] section naming the files (paths relative to CONFIG.toml's folder) and
    any stage sections of `seamountae config --template`. Outputs go to output_dir: patches.nc,
    model.pt, score.nc, detections.nc, seamounts.geojson (or .csv), with a reference
    evaluation.json, with plot = true map.png, and config.resolved.toml (every parameter resolved;
    `seamountae run config.resolved.toml` in that folder re-runs it).

    A stage is skipped when its output records the same parameters, the same input SHA-256 and
    the same seamountae version; an interrupted training resumes from its checkpoint. With a
    reference, the evaluation report is printed on stdout.

    \b
    Example:
      seamountae run configs/demo.toml
    \b
    where configs/demo.toml holds (in part):
      [run]
      grid_train = "../sample_data/azores_west.nc"
      catalogue = "../sample_data/azores_west_seamounts.csv"
      grid_search = "../sample_data/azores_east.nc"
      output_dir = "../demo_output"
      reference = "../sample_data/azores_east_seamounts.csv"
      [train]
      epochs = 30
    """
    from ..evaluation import format_report
    from ..pipeline import run

    for stage in ("train", "score"):
        options.check_device(resolve(stage, config_path, {})["device"])
    try:
        done = run(config_path, force=force, overwrite=overwrite, progress=options.show_progress(), report=summary)
    except KeyboardInterrupt:
        summary("seamountae: run stopped; finished stages are kept and the same command continues from there")
        raise
    if "evaluation" in done:
        click.echo(json.dumps(done["evaluation"], indent=1) if as_json else format_report(done["evaluation"]))
    ran = [stage for stage, state in done.items() if state == "ran"]
    summary(f"{config_path}: ran {', '.join(ran) if ran else 'nothing'}; "
            f"{sum(state == 'up to date' for state in done.values())} stage(s) up to date")

