"""Experiments: recipes (one YAML schema), their expansion into a grid of cells, a shared
content-addressed module cache, a SQLite store per run directory, and the runner behind
`adapterxl run`. See docs/EXPERIMENTS.md."""
from __future__ import annotations

from .recipe import Recipe, apply_overrides, load_recipe, parse_recipe

__all__ = ["Recipe", "apply_overrides", "load_recipe", "parse_recipe", "run_recipe"]


def run_recipe(*args, **kwargs):
    """See runner.run_recipe (imported lazily: it loads torch)."""
    from .runner import run_recipe as run

    return run(*args, **kwargs)
