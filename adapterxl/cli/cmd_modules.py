"""`adapterxl merge`, `inspect` and `methods`: what modules are made of, and combining them."""
from __future__ import annotations

import json

import click

from ..errors import AdapterxlError
from ._options import csv


def _floats(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(x) for x in value.split(",")]
    except ValueError:
        raise AdapterxlError(f"--weights expects numbers separated by commas, "
                             f"got {value!r}") from None


def register(main: click.Group) -> None:
    """Add `merge`, `inspect` and `methods` to the `adapterxl` group."""

    @main.command("merge")
    @click.option("--merge", "modules", required=True, metavar="DIR,DIR[,...]",
                  help="The modules to merge: one method, one backbone, the same lower "
                       "modules.")
    @click.option("--weights", default=None, metavar="W,W[,...]",
                  help="One weight per module, used as given (not normalized) [default: 1/N "
                       "each].")
    @click.option("--output", "-o", required=True, help="Module directory to write.")
    @click.option("--name", default=None, help="[default: merge-<name>+<name>...]")
    @click.option("--overwrite", is_flag=True, help="Replace an existing module at --output.")
    def merge_cmd(modules, weights, output, name, overwrite):
        """Merge modules into one: a weighted parameter average for bottleneck modules and
        IA3, an exact sum of the weighted updates for LoRA (ranks concatenated). DoRA is
        refused."""
        from ..hub import resolve_module
        from ..modules.merge import merge_modules

        merged = merge_modules([resolve_module(m) for m in csv(modules)], output,
                               _floats(weights), name=name,
                               overwrite=overwrite)
        parts = " + ".join(f"{m['weight']:g} × {m['name']}"
                           for m in merged.manifest["merged_from"])
        config = merged.method_config
        rank = f" (r={config['r']}, alpha={config['alpha']})" if "r" in config else ""
        click.echo(f"module {merged.name} saved to {merged.path}: {parts}, {merged.method}{rank}"
                   + (f"; head of {merged.manifest['head_from']}"
                      if merged.manifest.get("head_from") else ""))

    @main.command("inspect")
    @click.argument("module")
    @click.option("--data", default=None, help="hf or samples: data to measure "
                                               "AdapterFusion's attention on (LoRA fusion "
                                               "needs none).")
    @click.option("--data-dir", default=None, help="Local files: <split>[.<lang>].jsonl|tsv.")
    @click.option("--task", default=None, help="Task of that data [default: the module's].")
    @click.option("--language", default="en", show_default=True)
    @click.option("--max-examples", type=click.IntRange(min=1), default=64, show_default=True)
    @click.option("--model", default=None, help="Backbone [default: the module's].")
    @click.option("--json", "as_json", is_flag=True)
    def inspect_cmd(module, as_json, **kw):
        """What a module holds: its stack bottom first, fusion members, parameter counts,
        heads, metrics, and for a fusion the weight each member gets."""
        from ..evaluation.fusion import inspect_module
        from ..modules.inspect import format_inspection

        result = inspect_module(module, **kw)
        click.echo(json.dumps(result, indent=2) if as_json else format_inspection(result))

    @main.command("methods")
    @click.option("--json", "as_json", is_flag=True)
    def methods_cmd(as_json):
        """List the methods a module can be built with: engine, default config, what it
        is."""
        from ..modules.methods import METHODS

        rows = [{"name": m.name, "engine": m.engine, "defaults": m.defaults, "doc": m.doc,
                 "fusable": m.fusable, "lr": m.lr} for m in METHODS.values()]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for r in rows:
            defaults = " ".join(
                f"{k}={','.join(map(str, v)) or '[]' if isinstance(v, list) else v}"
                for k, v in r["defaults"].items())
            click.echo(f"{r['name']:<14} {r['engine']:<9} {r['doc']}")
            click.echo(f"{'':<14} defaults: {defaults or '-'}; lr {r['lr']:g}"
                       + ("" if r["fusable"] else "; cannot be fused"))
