"""`adapterxl tasks`: the task catalogue."""
from __future__ import annotations

import json

import click


def register(main: click.Group) -> None:
    """Add `tasks` to the `adapterxl` group."""

    @main.command()
    @click.option("--role", type=click.Choice(["intermediate", "target"]), default=None)
    @click.option("--suite", type=click.Choice(["intermediate", "xtreme", "xtreme-r"]),
                  default=None,
                  help="intermediate: the English intermediate tasks; xtreme / xtreme-r: a "
                       "benchmark's tasks with its language lists.")
    @click.option("--json", "as_json", is_flag=True)
    def tasks(role, suite, as_json):
        """List the tasks: format, languages, metric, source, English training data."""
        from ..tasks import describe_tasks

        rows = describe_tasks(role=role, suite=suite)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for t in rows:
            click.echo(f"{t['name']:<14} {t['format']:<20} {t['metric']:<16} "
                       f"train: {t['english_training_data'] or '-':<10} {t['source']}")
            click.echo(f"{'':<14} {len(t['languages'])} languages: {' '.join(t['languages'])}")
