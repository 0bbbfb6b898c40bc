"""`adapterxl train-intermediate`, `train-target`, `train-language` and `quickstart`. Every
train-* flag is a TrainConfig field, derived from its declaration in settings.py."""
from __future__ import annotations

import dataclasses

import click

from ..settings import TrainConfig, flag_name, settings_of
from ._options import columns, csv, data_source, key_values, setting_option

# Flags given several times or as comma lists, parsed into the field's value.
PARSE = {"method_config": key_values, "columns": columns, "stack": csv, "fuse": csv}


def _options(language: bool) -> list:
    """The click options of a train-* command: one per TrainConfig field that applies to it
    (fields with `only` set are on train-language or on the task commands alone)."""
    from ..data.text import LANGUAGE_HP  # train-language's defaults are a language module's

    specs = settings_of(TrainConfig)
    options = []
    for f in dataclasses.fields(TrainConfig):
        spec = specs[f.name]
        if not spec.flag or spec.only not in (None, "language" if language else "task"):
            continue
        # train-language's own default (seq_bn_inv) differs from TrainConfig's: click passes it
        own = language and spec.language_default is not None
        default = (spec.language_default if own
                   else None if f.default is dataclasses.MISSING else f.default)
        help = spec.help
        if language and (spec.language_help or f.name in LANGUAGE_HP):  # says its own default
            help = spec.language_help or f"[default: {LANGUAGE_HP[f.name]}]"
        elif not (default in (None, [], {}) or isinstance(default, bool) or "[default" in help):
            help += f"  [default: {default}]"
        decls = [flag_name(f.name)] + ([spec.short] if spec.short else [])
        # Otherwise not given is None (a bool flag False): TrainConfig's own default applies.
        options.append(setting_option(
            *decls, spec=spec, help=help, required=spec.required,
            default=default if own or spec.kind is bool else None))
    return options


def train_options(language: bool = False):
    """Decorate a train-* command with its flags."""
    options = _options(language)

    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


def train(kw: dict, default_output: str) -> None:
    """Flags -> a TrainConfig -> train_module -> one line."""
    from ..training import train_module

    kw = {k: v for k, v in kw.items() if v is not None}
    kw["data"] = data_source(kw.get("data"), kw.get("data_dir"))
    for name, parse in PARSE.items():
        if name in kw:
            kw[name] = parse(kw[name])
    if "output" not in kw:  # not given; an empty -o is refused, not replaced
        kw["output"] = default_output.format(
            task=kw["task"].replace(",", "+"), language=kw.get("language"))
    result = train_module(TrainConfig(**kw))
    click.echo(f"module saved to {result['module']} (dev {result['metric']} {result['dev']:.4f} "
               f"at step {result['best_step']}/{result['steps']}, "
               f"{result['tokens_per_second']:.0f} tokens/s)")


def register(main: click.Group) -> None:
    """Add the training commands to the `adapterxl` group."""

    @main.command("train-intermediate")
    @train_options()
    def train_intermediate(**kw):
        """Phase 2: train a module on an English intermediate task."""
        train(kw, "runs/{task}")

    @main.command("train-target")
    @train_options()
    def train_target(**kw):
        """Phase 3: train a target-task module, stacked on (--stack) or continuing
        (--init-from) intermediate modules."""
        train(kw, "runs/{task}")

    @main.command("train-language")
    @train_options(language=True)
    def train_language(**kw):
        """A language module (MAD-X): masked language modelling on raw text, by default with
        an invertible bottleneck adapter (seq_bn_inv). Stack it first under task modules with
        --lang-module; evaluation swaps it per language (--lang-modules)."""
        train({**kw, "task": "mlm"}, "runs/lang-{language}")

    @main.command()
    @click.option("--output", "-o", default="runs/quickstart", show_default=True)
    @click.option("--method", default="seq_bn", show_default=True)
    @click.option("--model", default="builtin:tiny-xlmr", show_default=True,
                  help="builtin:tiny-xlmr (random weights, fast) or builtin:e5-small (real "
                       "pretrained weights: shows real transfer; needs the e5 extra).")
    def quickstart(output, method, model):
        """The whole pipeline offline on bundled samples: MNLI module, XNLI stacked on it,
        zero-shot evaluation."""
        from ..quickstart import run

        run(output, method=method, model=model, echo=click.echo)
