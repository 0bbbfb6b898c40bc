"""`adapterxl run`: experiment recipes through the grid runner. Thin, like every command:
parse, call one library function, print."""
from __future__ import annotations

import click

from ..experiments.grid import MAX_CELLS


def register(main: click.Group) -> None:
    """Add this file's commands to the `adapterxl` group."""

    @main.command("run", context_settings={"ignore_unknown_options": False})
    @click.argument("recipe")
    @click.argument("overrides", nargs=-1)
    @click.option("--dry-run", is_flag=True,
                  help="Print the plan (cells, modules to train vs reuse, estimated cost) and "
                       "stop.")
    @click.option("--budget", default=None, metavar="AMOUNT",
                  help="Device time for this invocation, e.g. 20gpu-h, 2h, 30m, 90s: the most "
                       "informative cells run first; the rest stay pending.")
    @click.option("--shard", default=None, metavar="I/N",
                  help="Run every N-th cell starting at I (0-based); shards share the store "
                       "and the module cache.")
    @click.option("--run-dir", default=None, metavar="DIR",
                  help="Where the store and evaluations go [default: runs/<recipe name>].")
    @click.option("--cache-dir", default=None, metavar="DIR",
                  help="Module cache shared across recipes [default: recipe's `cache`, else "
                       "$ADAPTERXL_HOME/modules].")
    @click.option("--max-cells", type=click.IntRange(min=1), default=MAX_CELLS,
                  show_default=True,
                  help="Refuse a grid with more cells than this (a typo in a list can "
                       "multiply it).")
    def run_command(recipe, overrides, dry_run, budget, shard, run_dir, cache_dir, max_cells):
        """Run an experiment recipe (a YAML file, or the name of a shipped one: stilts-xtreme,
        order, task-similarity, sts-lowres, scaling, typology, quickstart) with optional
        key=value overrides (dotted paths, e.g. model=builtin:tiny-xlmr data=samples
        train.max_steps=10). Running again continues where an interrupted run stopped."""
        from ..experiments.runner import run_recipe

        from ..errors import AdapterxlError

        summary = run_recipe(recipe, overrides, run_dir=run_dir, dry_run=dry_run,
                             budget=budget, shard=shard, cache_dir=cache_dir, echo=click.echo,
                             max_cells=max_cells)
        if not dry_run and summary.get("failed"):
            raise AdapterxlError(f"{summary['failed']} of {summary['cells']} cells failed (the "
                                 f"reasons are above and in {summary['store']}, cells.error)")
