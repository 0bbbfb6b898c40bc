"""What the command families share: click types and options derived from declared Settings,
the parsers of list and key=value flags, and shell completion."""
from __future__ import annotations

import click
import yaml

from .. import safe_yaml
from ..errors import AdapterxlError
from ..settings import Setting, TrainConfig, settings_of

DATA_DIR_HELP = settings_of(TrainConfig)["data_dir"].help


def key_values(pairs, flag: str = "--method-config") -> dict:
    """KEY=VALUE strings -> a mapping; values are YAML (8 -> int, q,k,v -> a string)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise AdapterxlError(f"{flag} expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = safe_yaml.load(value, f"{flag} {key}")
        except yaml.YAMLError:
            raise AdapterxlError(f"{flag} {pair!r}: the value is not valid YAML") from None
    return out


def columns(pairs) -> dict:
    """KEY=COL[,COL] strings -> {key: column or [columns]}."""
    bad = next((c for c in pairs if "=" not in c), None)
    if bad is not None:
        raise AdapterxlError(f"--columns expects KEY=COLUMN[,COLUMN], got {bad!r}")
    return {k: (v.split(",") if "," in v else v)
            for k, _, v in (c.partition("=") for c in pairs) if v}


def csv(value: str | None) -> list[str]:
    return [x for x in (value or "").split(",") if x]


def data_source(data: str | None, data_dir: str | None, default: str | None = "hf"):
    """--data, refusing a contradiction: --data-dir means local files."""
    if data is not None and data_dir is not None:
        raise AdapterxlError(f"--data {data} and --data-dir {data_dir} contradict each other: "
                             f"--data-dir alone reads local files")
    if data_dir is not None and not data_dir.strip():
        raise AdapterxlError("--data-dir is empty")
    return data or default


def complete_tasks(ctx, param, incomplete: str) -> list[str]:
    """Task names, also after a comma (multi-task lists)."""
    from ..tasks import catalog

    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    return [prefix + name for name in sorted(catalog()) if name.startswith(last)]


def complete_methods(ctx, param, incomplete: str) -> list[str]:
    from ..modules.methods import METHODS

    return [name for name in METHODS if name.startswith(incomplete)]


COMPLETE = {"tasks": complete_tasks, "methods": complete_methods}


class Checked(click.ParamType):
    """A flag checked against its declared Setting: a bad value is one `error:` line naming
    the flag and the allowed range, before anything loads."""

    def __init__(self, spec: Setting):
        self.spec = spec
        self.name = spec.kind.__name__

    def convert(self, value, param, ctx):
        name = param.opts[0] if param is not None else "value"
        if isinstance(value, str):
            return self.spec.parse(value, name)
        return self.spec.check(value, name)


def setting_option(*decls: str, spec: Setting, default=None, help: str | None = None, **kw):
    """A click option derived from a Setting: bool -> an on/off flag, dict -> repeated
    KEY=VALUE, list -> a comma list, free-form -> plain text, else a Checked value."""
    help = spec.help if help is None else help
    if spec.kind is bool:
        return click.option(*decls, is_flag=True, default=bool(default), help=help, **kw)
    if spec.complete:
        kw["shell_complete"] = COMPLETE[spec.complete]
    if spec.kind is dict:
        return click.option(*decls, multiple=True, metavar=spec.metavar, help=help, **kw)
    if spec.kind is list or not spec.checked:
        return click.option(*decls, default=default, metavar=spec.metavar, help=help, **kw)
    metavar = spec.metavar or ("[" + "|".join(spec.choices) + "]" if spec.choices
                               else spec.kind.__name__.upper())
    return click.option(*decls, type=Checked(spec), default=default, help=help,
                        metavar=metavar, **kw)
