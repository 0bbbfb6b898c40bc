"""`adapterxl` commands for sharing modules: push, pull, the registry, export and import.
Thin, like every command: parse, call one library function, print."""
from __future__ import annotations

import json

import click

REGISTRY_HELP = ("hf (the Hugging Face Hub) or a local registry DIR laid out like the Hub "
                 "(DIR/org/name/revision) [default: $ADAPTERXL_REGISTRY, else hf].")


def register(main: click.Group) -> None:
    """Add this file's commands to the `adapterxl` group."""

    @main.command("push")
    @click.argument("module")
    @click.option("--repo", required=True, metavar="ORG/NAME", help="The repository to publish to.")
    @click.option("--private", is_flag=True, help="Create the Hub repository private.")
    @click.option("--revision", default=None, metavar="BRANCH", help="Branch [default: main].")
    @click.option("--registry", default=None, help=REGISTRY_HELP)
    @click.option("--license", "license_", default=None, metavar="ID",
                  help="The card's licence (a Hub licence id, e.g. apache-2.0, mit, "
                       "cc-by-4.0; mind the backbone's and the data's) [default: unknown].")
    @click.option("--also", default=None, metavar="peft,adapters",
                  help="Also upload the module exported in these formats (subfolders peft/, "
                       "adapters/), so that it loads without adapterxl.")
    def push_cmd(module, repo, private, revision, registry, license_, also):
        """Publish a module (weights, manifest, lower/fused copies, model card)."""
        from ..hub import push

        where = push(module, repo, private=private, revision=revision, registry=registry,
                     license=license_, also=[x for x in (also or "").split(",") if x])
        click.echo(f"pushed {module} to {where}")

    @main.command("pull")
    @click.argument("spec", metavar="ORG/NAME[@REVISION]")
    @click.option("--registry", default=None, help=REGISTRY_HELP)
    def pull_cmd(spec, registry):
        """Download and verify a module into adapterxl's cache; prints its folder."""
        from ..hub import pull

        click.echo(str(pull(spec, registry=registry)))

    @main.group("hub")
    def hub_group():
        """Find shared modules."""

    @hub_group.command("list")
    @click.option("--task", default=None, help="Only modules for this task.")
    @click.option("--backbone", default=None, help="Only modules for this backbone.")
    @click.option("--registry", default=None, help=REGISTRY_HELP)
    @click.option("--json", "as_json", is_flag=True)
    def hub_list(task, backbone, registry, as_json):
        """Modules on the Hub (library adapterxl) or in a registry."""
        from ..hub import list_modules

        rows = list_modules(task=task, backbone=backbone, registry=registry)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for r in rows:
            langs = ",".join(r.get("languages") or []) or "-"
            click.echo(f"{r['id']:<40} {r.get('task') or '-':<12} {r.get('method') or '-':<10} "
                       f"{r.get('backbone') or '-':<28} {langs}")
        if not rows:
            click.echo("no modules found")

    @main.command("export")
    @click.argument("module")
    @click.option("--format", "fmt", type=click.Choice(["peft", "adapters"]), required=True)
    @click.option("--output", "-o", required=True, metavar="DIR")
    @click.option("--overwrite", is_flag=True, help="Replace an earlier export at --output.")
    def export_cmd(module, fmt, output, overwrite):
        """Write a module in PEFT's or the adapters library's format (head beside it)."""
        from ..hub import resolve_module
        from ..modules.export import export_module

        out = export_module(resolve_module(module), fmt, output, overwrite=overwrite)
        click.echo(f"exported {module} ({fmt} format) to {out}")

    @main.command("import")
    @click.argument("source", metavar="DIR|ORG/NAME[@REVISION]")
    @click.option("--output", "-o", required=True, metavar="MODULE")
    @click.option("--model", default=None,
                  help="The backbone it belongs to [default: the one its config names].")
    @click.option("--task", default=None, help="Task it was trained on [default: unknown].")
    @click.option("--name", default=None, help="Module name [default: the folder's].")
    @click.option("--role", type=click.Choice(["task", "language"]), default=None,
                  help="[default: language for invertible (MAD-X) adapters, else task]")
    @click.option("--language", default=None, help="Language of a language module.")
    @click.option("--allow-pickle", is_flag=True,
                  help="Accept .bin (pickle) weights, read with torch.load(weights_only=True).")
    @click.option("--registry", default=None, help=REGISTRY_HELP)
    @click.option("--overwrite", is_flag=True, help="Replace an existing module at --output.")
    def import_cmd(source, output, **kw):
        """Convert a PEFT or adapters adapter into an adapterxl module."""
        from ..hub import import_module

        mod = import_module(source, output, **kw)
        click.echo(f"imported {source} as {mod.path} ({mod.method}, "
                   f"{'head-less' if mod.manifest.get('head') is None else 'with head'})")
