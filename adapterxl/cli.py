"""The `adapterxl` command: parse, call one library function, print. No logic here."""
from __future__ import annotations

import json
import sys

import click
import yaml

from .errors import AdapterxlError


class Group(click.Group):
    """Turns AdapterxlError into one line on stderr and exit code 2 (a traceback with --debug)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AdapterxlError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as e:  # a bug or an environment problem: still one line by default
            if ctx.obj and ctx.obj.get("debug"):
                raise
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            click.echo(f"error: unexpected {type(e).__name__}: {first} "
                       f"(rerun with `adapterxl --debug ...` for the traceback)", err=True)
            sys.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def main(ctx, debug):
    """adapterxl: English intermediate-task modules for zero-shot cross-lingual transfer."""
    import logging

    ctx.obj = {"debug": debug}
    if not debug:
        # bitsandbytes reports optional CPU kernels it did not find, on every import.
        logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


def _key_values(pairs) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise AdapterxlError(f"--method-config expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key] = yaml.safe_load(value)
    return out


def _csv(value: str | None) -> list[str]:
    return [x for x in (value or "").split(",") if x]


def train_options(default_output: str):
    """Flags shared by train-intermediate and train-target; each is a TrainConfig field."""
    options = [
        click.option("--task", required=True, help="Task name (see `adapterxl tasks`)."),
        click.option("--output", "-o", default=None,
                     help=f"Module directory to write [default: {default_output}]."),
        click.option("--model", default="xlm-roberta-large", show_default=True,
                     help="Backbone: HF id, local path, or builtin:tiny-xlmr."),
        click.option("--method", default="seq_bn", show_default=True, help="seq_bn or lora."),
        click.option("--method-config", multiple=True, metavar="KEY=VALUE",
                     help="Override a method setting, e.g. reduction_factor=8 or r=16."),
        click.option("--stack", default=None, metavar="DIR[,DIR]",
                     help="Modules to stack beneath the new one (frozen, bottom first)."),
        click.option("--init-from", default=None, metavar="DIR",
                     help="Continue training this module's weights on the new task."),
        click.option("--data", default="hf", show_default=True,
                     help="hf (Hugging Face datasets) or samples (bundled synthetic data)."),
        click.option("--data-dir", default=None, help="Local files: <split>[.<lang>].jsonl|tsv."),
        click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
                     help="[default: bf16 on a bf16 GPU, else fp32]"),
        click.option("--quantize", type=click.Choice(["none", "8bit", "4bit"]), default="none",
                     show_default=True),
        click.option("--lr", type=float, default=None, help="[default: 1e-4 seq_bn, 3e-4 lora]"),
        click.option("--epochs", type=float, default=None, help="[default: the task's]"),
        click.option("--max-steps", type=int, default=None, help="Stop after N optimizer steps."),
        click.option("--batch-size", type=int, default=None, help="Effective batch [task's]."),
        click.option("--micro-batch-size", type=int, default=None,
                     help="Per-step batch; gradients accumulate to --batch-size."),
        click.option("--max-length", type=int, default=None),
        click.option("--max-train-examples", type=int, default=None),
        click.option("--seed", type=int, default=42, show_default=True),
        click.option("--force", is_flag=True, help="Use modules trained on another backbone."),
        click.option("--checkpoint-every", type=click.IntRange(min=0), default=None,
                     metavar="N",
                     help="Checkpoint every N optimizer steps, besides every dev evaluation; "
                          "0: only at evaluations [default: every 10% of the run]."),
        click.option("--resume", is_flag=True,
                     help="Continue an interrupted run from <output>.checkpoint/ (same "
                          "settings required)."),
    ]

    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


def _train(kw, default_output):
    from .train import TrainConfig, train_module

    kw["output"] = kw["output"] or default_output.format(task=kw["task"])
    kw["stack"] = _csv(kw["stack"])
    kw["method_config"] = _key_values(kw["method_config"])
    result = train_module(TrainConfig(**kw))
    click.echo(f"module saved to {result['module']} (dev {result['metric']} {result['dev']:.4f} "
               f"at step {result['best_step']}/{result['steps']}, "
               f"{result['tokens_per_second']:.0f} tokens/s)")


@main.command("train-intermediate")
@train_options("runs/{task}")
def train_intermediate(**kw):
    """Phase 2: train a module on an English intermediate task."""
    _train(kw, "runs/{task}")


@main.command("train-target")
@train_options("runs/{task}")
def train_target(**kw):
    """Phase 3: train a target-task module, stacked on (--stack) or continuing (--init-from)
    intermediate modules."""
    _train(kw, "runs/{task}")


@main.command("evaluate")
@click.option("--task", default=None, help="One task (or use --suite).")
@click.option("--suite", type=click.Choice(["xtreme", "xtreme-r"]), default=None,
              help="Every task of a benchmark in its languages, and the benchmark score.")
@click.option("--module", "modules", multiple=True, required=True, metavar="[TASK=]DIR",
              help="The module to evaluate. With --suite: TASK=DIR per task, or a DIR holding "
                   "one module per task (DIR/xnli, DIR/udpos, ...).")
@click.option("--retrieval-module", default=None, metavar="DIR",
              help="With --suite: the module whose representations BUCC, Tatoeba, LAReQA and "
                   "Mewsli-X use when no TASK=DIR names one (the paper: an intermediate module).")
@click.option("--languages", default="all", show_default=True, help="all or a comma list.")
@click.option("--split", default="test", show_default=True)
@click.option("--data", default="hf", show_default=True)
@click.option("--data-dir", default=None)
@click.option("--output", "-o", default=None,
              help="Results folder [default: <module>/eval; with --suite runs/eval-<suite>].")
@click.option("--predictions-dir", default=None, metavar="DIR",
              help="Write predictions as DIR/<task>/<split>-<lang>.<ext> (XTREME's layout).")
@click.option("--model", default=None, help="Backbone [default: the module's].")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None)
@click.option("--quantize", type=click.Choice(["none", "8bit", "4bit"]), default="none")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--max-length", type=int, default=None, help="[default: the task's]")
@click.option("--max-examples", type=int, default=None, help="Per language.")
@click.option("--layer", type=int, default=None,
              help="Retrieval: hidden layer to mean-pool [default: 14/24 of the depth].")
@click.option("--force", is_flag=True)
def evaluate_cmd(task, suite, modules, retrieval_module, languages, output, **kw):
    """Zero-shot evaluation in every language; writes the XTREME submission layout."""
    from .evaluation import evaluate, evaluate_suite, format_suite, format_table

    if (task is None) == (suite is None):
        raise AdapterxlError("give either --task or --suite")
    if suite:
        named = {}
        for m in modules:
            key, _, path = m.rpartition("=")
            named[key or "*"] = path
        if retrieval_module:
            named["retrieval"] = retrieval_module
        summary = evaluate_suite(suite, named, output=output or f"runs/eval-{suite}",
                                 progress=lambda line: click.echo(line, err=True), **kw)
        for r in summary["tasks"].values():
            click.echo(format_table(r))
        click.echo(format_suite(summary))
        return
    if len(modules) != 1 or "=" in modules[0]:
        raise AdapterxlError("--task takes exactly one --module DIR")
    result = evaluate(task, modules[0], languages=languages, output=output, **kw)
    click.echo(format_table(result))
    click.echo(f"predictions: {result['predictions']}/")


@main.command()
@click.option("--output", "-o", default="runs/quickstart", show_default=True)
@click.option("--method", default="seq_bn", show_default=True)
def quickstart(output, method):
    """The whole pipeline offline on a tiny random backbone and bundled samples."""
    from .quickstart import run

    run(output, method=method, echo=click.echo)


@main.command()
@click.option("--role", type=click.Choice(["intermediate", "target"]), default=None)
@click.option("--suite", type=click.Choice(["intermediate", "xtreme", "xtreme-r"]), default=None,
              help="intermediate: the English intermediate tasks; xtreme / xtreme-r: a "
                   "benchmark's tasks with its language lists.")
@click.option("--json", "as_json", is_flag=True)
def tasks(role, suite, as_json):
    """List the tasks: format, languages, metric, source, English training data."""
    from .tasks import describe_tasks

    rows = describe_tasks(role=role, suite=suite)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for t in rows:
        click.echo(f"{t['name']:<14} {t['format']:<20} {t['metric']:<16} "
                   f"train: {t['english_training_data'] or '-':<10} {t['source']}")
        click.echo(f"{'':<14} {len(t['languages'])} languages: {' '.join(t['languages'])}")


if __name__ == "__main__":
    main()
