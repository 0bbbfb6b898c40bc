"""`adapterxl` commands for experiments: recipes, the grid runner, reports and analyses. Thin, like cli.py: parse,
call one library function, print."""
from __future__ import annotations

import click


def register(main: click.Group) -> None:
    """Add this file's commands to the `adapterxl` group."""
