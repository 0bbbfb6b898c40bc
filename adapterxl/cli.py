"""The `adapterxl` command: parse, call one library function, print. No logic here."""
from __future__ import annotations

import json
import os
import sys

import click
import yaml

from . import __version__, safe_yaml
from .errors import AdapterxlError
from .logs import log_error
from .settings import EVALUATE, Setting, TrainConfig, flag_name, settings_of


class Group(click.Group):
    """Turns AdapterxlError into one line on stderr and exit code 2 (a traceback with --debug)."""

    def invoke(self, ctx):
        import warnings

        # Library warnings are held back while the command runs: shown after it succeeds,
        # dropped when it fails, so that an error is one line and nothing precedes it.
        with warnings.catch_warnings(record=True) as held:
            result = self._invoke(ctx)
        for w in held:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        return result

    def _invoke(self, ctx):
        from .preemption import Stopped

        try:
            return super().invoke(ctx)
        except Stopped as e:  # not an error: a checkpoint was written, the run can resume
            click.echo(str(e), err=True)
            sys.exit(128 + e.signum)
        except BrokenPipeError:
            # `adapterxl tasks | head`: the reader left; stay quiet like other Unix tools
            # (stdout goes to devnull so that the interpreter's final flush cannot fail).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)
        except AdapterxlError as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {e}", err=True)
            log_error(f"error: {e}", e)
            sys.exit(2)
        except click.UsageError as e:
            # A bad flag is bad input like any other: one line, not click's usage text.
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {e.format_message()}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as e:
            click.echo(str(e) or "interrupted", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as e:  # a bug or an environment problem: still one line by default
            if ctx.obj and ctx.obj.get("debug"):
                raise
            from ._io import write_failure

            failure = write_failure(e, getattr(e, "filename", None))
            if failure is not None:  # a full disk or a read-only place: the user's to fix
                where = getattr(e, "filename", None)
                click.echo(f"error: cannot write{f' {where}' if where else ''}: "
                           f"{os.strerror(failure[0])}; {failure[1]}", err=True)
                sys.exit(2)
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            click.echo(f"error: unexpected {type(e).__name__}: {first} "
                       f"(rerun with `adapterxl --debug ...` for the traceback)", err=True)
            log_error(f"error: unexpected {type(e).__name__}: {first}", e)
            sys.exit(1)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.option("--verbose", "-v", count=True,
              help="More detail: debug messages and the Hugging Face libraries' own info.")
@click.option("--quiet", "-q", is_flag=True,
              help="Only warnings, errors and results: no progress bars or status lines.")
@click.option("--log-file", default=None, metavar="FILE", type=click.Path(dir_okay=False),
              help="Also write every message, timestamped, to FILE (appended), with the "
                   "traceback of an error.")
@click.option("--catalog", "catalogs", multiple=True, metavar="FILE",
              help="A catalogue file of your own tasks (the schema of docs/FORMATS.md): adds "
                   "or replaces tasks; also $ADAPTERXL_CATALOG.")
@click.version_option(__version__, "--version", prog_name="adapterxl")
@click.pass_context
def main(ctx, debug, verbose, quiet, log_file, catalogs):
    """adapterxl: English intermediate-task modules for zero-shot cross-lingual transfer.

    Shell completion (commands, options, task and method names): add
    `eval "$(_ADAPTERXL_COMPLETE=bash_source adapterxl)"` to ~/.bashrc (zsh: zsh_source in
    ~/.zshrc; fish: `_ADAPTERXL_COMPLETE=fish_source adapterxl | source`)."""
    from .logs import setup

    if verbose and quiet:
        raise AdapterxlError("give -v or -q, not both")
    ctx.obj = {"debug": debug}
    if catalogs:
        from .tasks import CATALOG_ENV

        # The environment, so that every part of this run (and processes it starts) sees them.
        os.environ[CATALOG_ENV] = os.pathsep.join(
            [*catalogs, *filter(None, os.environ.get(CATALOG_ENV, "").split(os.pathsep))])
    # Also keeps bitsandbytes' note about optional CPU kernels off the screen (unless -v).
    setup(-1 if quiet else verbose, log_file)


def _key_values(pairs) -> dict:
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise AdapterxlError(f"--method-config expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        try:
            out[key] = safe_yaml.load(value, f"--method-config {key}")
        except yaml.YAMLError:
            raise AdapterxlError(f"--method-config {pair!r}: the value is not valid YAML") \
                from None
    return out


def _data_source(data: str | None, data_dir: str | None, default: str | None = "hf"):
    """--data, refusing a contradiction: --data-dir means local files."""
    if data is not None and data_dir is not None:
        raise AdapterxlError(f"--data {data} and --data-dir {data_dir} contradict each other: "
                             f"--data-dir alone reads local files")
    if data_dir is not None and not data_dir.strip():
        raise AdapterxlError("--data-dir is empty")
    return data or default
def _complete_tasks(ctx, param, incomplete: str) -> list[str]:
    """Task names, also after a comma (multi-task lists)."""
    from .tasks import catalog

    done, _, last = incomplete.rpartition(",")
    prefix = f"{done}," if done else ""
    return [prefix + name for name in sorted(catalog()) if name.startswith(last)]


def _complete_methods(ctx, param, incomplete: str) -> list[str]:
    from .modules.methods import METHODS

    return [name for name in METHODS if name.startswith(incomplete)]


def _bad_columns(columns) -> dict:
    bad = next(c for c in columns if "=" not in c)
    raise AdapterxlError(f"--columns expects KEY=COLUMN[,COLUMN], got {bad!r}")


def _csv(value: str | None) -> list[str]:
    return [x for x in (value or "").split(",") if x]


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


def setting_option(flag: str, spec: Setting, default=None, help: str | None = None, **kw):
    """A click option derived from a Setting."""
    help = spec.help if help is None else help
    if spec.kind is bool:
        return click.option(flag, is_flag=True, default=bool(default), help=help, **kw)
    metavar = spec.metavar or ("[" + "|".join(spec.choices) + "]" if spec.choices
                               else spec.kind.__name__.upper())
    return click.option(flag, type=Checked(spec), default=default, help=help,
                        metavar=metavar, **kw)


def _train_settings(language: bool) -> list:
    from dataclasses import MISSING, fields

    from .data.text import LANGUAGE_HP

    specs = settings_of(TrainConfig)
    options = []
    for f in fields(TrainConfig):
        spec = specs.get(f.name)
        if spec is None or not spec.flag or (language and f.name in TASK_ONLY):
            continue
        default = None if f.default is MISSING else f.default
        # train-language's defaults are a language module's, not a task's
        help = (f"[default: {LANGUAGE_HP[f.name]}]" if language and f.name in LANGUAGE_HP
                else None)
        options.append(setting_option(flag_name(f.name), spec, default, help=help))
    return options


TASK_ONLY = ("sampling", "sampling_temperature")  # multi-task settings: not for train-language

DATA_DIR_HELP = ("Local files <split>[.<lang>].<ext>, ext one of jsonl, tsv, json, conllu, "
                 "conll, txt, csv (the canonical rows, or a dataset's original format), or "
                 "XTREME's download layout; see docs/FORMATS.md.")


def train_options(default_output: str, language: bool = False):
    """Flags shared by the train-* commands; each is a TrainConfig field (the checked ones
    are derived from its declarations)."""
    task_options = [] if language else [
        click.option("--task", required=True, shell_complete=_complete_tasks,
                     help="Task name (see `adapterxl tasks`); a comma list trains one shared "
                          "module with a head per task (multi-task)."),
        click.option("--stack", default=None, metavar="DIR[,DIR]",
                     help="Modules to stack beneath the new one (frozen, bottom first)."),
        click.option("--fuse", default=None, metavar="DIR,DIR[,...]",
                     help="Train a fusion of these modules (and a head) instead of a new "
                          "module: AdapterFusion for bottleneck modules, a learned weighted "
                          "combination for LoRA modules."),
        click.option("--lang-module", default=None, metavar="DIR",
                     help="A language module (train-language) to put first in the stack."),
        click.option("--dataset", default=None, metavar="ID[:CONFIG]",
                     help="Train on this Hub dataset instead of the task's catalogue sources "
                          "(its train split; see --columns, --dev-split)."),
        click.option("--columns", multiple=True, metavar="KEY=COL[,COL]",
                     help="With --dataset: which columns hold the format's canonical keys, "
                          "e.g. text=premise,hypothesis label=label (docs/FORMATS.md)."),
        click.option("--dev-split", default=None, metavar="SPLIT",
                     help="With --dataset: the split for model selection [default: 5% of "
                          "train held out]."),
    ]
    options = task_options + [
        click.option("--output", "-o", default=None,
                     help=f"Module directory to write [default: {default_output}]."),
        click.option("--model", default="xlm-roberta-large", show_default=True,
                     help="Backbone: HF id, local path, builtin:tiny-<arch> (xlmr, xlmr-xl, "
                          "mt5, deberta, bert, llama, qwen2; random weights) or "
                          "builtin:e5-small (real weights, the e5 extra)."),
        click.option("--method", default="seq_bn_inv" if language else "seq_bn",
                     show_default=True, shell_complete=_complete_methods,
                     help="seq_bn, double_seq_bn, par_bn, compacter, prefix, lora, dora, ia3 "
                          "or seq_bn_inv (see `adapterxl methods`)."),
        click.option("--method-config", multiple=True, metavar="KEY=VALUE",
                     help="Override a method setting, e.g. reduction_factor=8, r=16, "
                          "matrices=q,k,v, dropout=0.1."),
        click.option("--init-from", default=None, metavar="DIR",
                     help="Continue training this module's weights on the new task."),
        click.option("--data", default=None,
                     help=("samples: the bundled sample text of --language (instead of --text "
                           "or --dataset)." if language else
                           "hf (Hugging Face datasets) or samples (bundled synthetic data) "
                           "[default: hf].")),
        click.option("--data-dir", default=None, metavar="DIR", help=DATA_DIR_HELP),
    ] + _train_settings(language)

    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


def _train(kw, default_output):
    from .training import TrainConfig, train_module

    if kw["output"] is None:  # not given; an empty -o is refused, not replaced
        kw["output"] = default_output.format(
            task=kw["task"].replace(",", "+"), language=kw.get("language"))
    kw["data"] = _data_source(kw["data"], kw["data_dir"])
    kw["stack"] = _csv(kw.get("stack"))
    kw["fuse"] = _csv(kw.get("fuse"))
    kw["method_config"] = _key_values(kw["method_config"])
    if "columns" in kw:
        kw["columns"] = {k: (v.split(",") if "," in v else v)
                         for k, _, v in (c.partition("=") for c in kw["columns"]) if v} \
            if all("=" in c for c in kw["columns"]) else _bad_columns(kw["columns"])
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


@main.command("train-language")
@click.option("--language", required=True, help="ISO code of the language, e.g. sw.")
@click.option("--text", default=None, metavar="FILE", help="Raw text, one passage per line.")
@click.option("--dataset", default=None, metavar="ID[:CONFIG]",
              help="A Hub dataset with a `text` column, e.g. wikimedia/wikipedia:20231101.sw.")
@train_options("runs/lang-{language}", language=True)
def train_language(**kw):
    """A language module (MAD-X): masked language modelling on raw text, by default with an
    invertible bottleneck adapter (seq_bn_inv). Stack it first under task modules with
    --lang-module; evaluation swaps it per language (--lang-modules)."""
    _train({**kw, "task": "mlm"}, "runs/lang-{language}")


@main.command("evaluate")
@click.option("--task", default=None, shell_complete=_complete_tasks,
              help="One task (or use --suite).")
@click.option("--suite", type=click.Choice(["xtreme", "xtreme-r"]), default=None,
              help="Every task of a benchmark in its languages, and the benchmark score.")
@click.option("--module", "modules", multiple=True, required=True, metavar="[TASK=]DIR",
              help="The module to evaluate. With --suite: TASK=DIR per task, or a DIR holding "
                   "one module per task (DIR/xnli, DIR/udpos, ...).")
@click.option("--retrieval-module", default=None, metavar="DIR",
              help="With --suite: the module whose representations BUCC, Tatoeba, LAReQA and "
                   "Mewsli-X use when no TASK=DIR names one (the paper: an intermediate module).")
@click.option("--languages", default="all", show_default=True, help="all or a comma list.")
@click.option("--split", default="test", show_default=True,
              help="Which split to evaluate on: train, validation or test.")
@click.option("--data", default=None,
              help="hf (Hugging Face datasets) or samples (bundled synthetic data) [default: "
                   "where the module's own training data came from: samples, its --data-dir "
                   "for its own task, else hf].")
@click.option("--data-dir", default=None, metavar="DIR", help=DATA_DIR_HELP)
@click.option("--output", "-o", default=None,
              help="Results folder [default: <module>/eval; with --suite runs/eval-<suite>].")
@click.option("--predictions-dir", default=None, metavar="DIR",
              help="Write predictions as DIR/<task>/<split>-<lang>.<ext> (XTREME's layout).")
@click.option("--model", default=None, help="Backbone [default: the module's].")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default=None)
@click.option("--quantize", type=click.Choice(["none", "8bit", "4bit"]), default="none")
@setting_option("--batch-size", EVALUATE["batch_size"], 64)
@setting_option("--max-length", EVALUATE["max_length"])
@setting_option("--max-examples", EVALUATE["max_examples"])
@setting_option("--layer", EVALUATE["layer"])
@click.option("--lang-modules", default=None, metavar="DIR",
              help="Swap the module's language module per language: DIR/lang-<code> where "
                   "it exists, else the one it was trained with.")
@click.option("--force", is_flag=True,
              help="Use the module on a backbone other than the one it was trained on "
                   "(the fingerprint check is skipped).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              metavar="N", help="Resamples for the 95% confidence intervals in the results "
                                "(0: none).")
@click.option("--trust-remote-code", is_flag=True,
              help="Run the backbone checkpoint's own Python model code (auto_map).")
@click.option("--allow-pickle", is_flag=True,
              help="Read a backbone stored as pickle (pytorch_model.bin).")
def evaluate_cmd(task, suite, modules, retrieval_module, languages, output, **kw):
    """Zero-shot evaluation in every language; writes the XTREME submission layout."""
    from .evaluation import evaluate, evaluate_suite, format_suite, format_table

    if (task is None) == (suite is None):
        raise AdapterxlError("give either --task or --suite")
    # not given: evaluation reads where the module's own training data came from
    kw["data"] = _data_source(kw["data"], kw["data_dir"], default=None)
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
@click.option("--model", default="builtin:tiny-xlmr", show_default=True,
              help="builtin:tiny-xlmr (random weights, fast) or builtin:e5-small (real "
                   "pretrained weights: shows real transfer; needs the e5 extra).")
def quickstart(output, method, model):
    """The whole pipeline offline on bundled samples: MNLI module, XNLI stacked on it,
    zero-shot evaluation."""
    from .quickstart import run

    run(output, method=method, model=model, echo=click.echo)


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



def _floats(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(x) for x in value.split(",")]
    except ValueError:
        raise AdapterxlError(f"--weights expects numbers separated by commas, "
                             f"got {value!r}") from None


@main.command("merge")
@click.option("--merge", "modules", required=True, metavar="DIR,DIR[,...]",
              help="The modules to merge: one method, one backbone, the same lower modules.")
@click.option("--weights", default=None, metavar="W,W[,...]",
              help="One weight per module, used as given (not normalized) [default: 1/N each].")
@click.option("--output", "-o", required=True, help="Module directory to write.")
@click.option("--name", default=None, help="[default: merge-<name>+<name>...]")
@click.option("--overwrite", is_flag=True, help="Replace an existing module at --output.")
def merge_cmd(modules, weights, output, name, overwrite):
    """Merge modules into one: a weighted parameter average for bottleneck modules and IA3,
    an exact sum of the weighted updates for LoRA (ranks concatenated). DoRA is refused."""
    from .modules.merge import merge_modules

    merged = merge_modules(_csv(modules), output, _floats(weights), name=name,
                           overwrite=overwrite)
    parts = " + ".join(f"{m['weight']:g} × {m['name']}" for m in merged.manifest["merged_from"])
    config = merged.method_config
    rank = f" (r={config['r']}, alpha={config['alpha']})" if "r" in config else ""
    click.echo(f"module {merged.name} saved to {merged.path}: {parts}, {merged.method}{rank}"
               + (f"; head of {merged.manifest['head_from']}"
                  if merged.manifest.get("head_from") else ""))


@main.command("inspect")
@click.argument("module")
@click.option("--data", default=None, help="hf or samples: data to measure AdapterFusion's "
                                           "attention on (LoRA fusion needs none).")
@click.option("--data-dir", default=None, help="Local files: <split>[.<lang>].jsonl|tsv.")
@click.option("--task", default=None, help="Task of that data [default: the module's].")
@click.option("--language", default="en", show_default=True)
@click.option("--max-examples", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--model", default=None, help="Backbone [default: the module's].")
@click.option("--json", "as_json", is_flag=True)
def inspect_cmd(module, as_json, **kw):
    """What a module holds: its stack bottom first, fusion members, parameter counts, heads,
    metrics, and for a fusion the weight each member gets."""
    from .modules.inspect import format_inspection, inspect_module

    result = inspect_module(module, **kw)
    click.echo(json.dumps(result, indent=2) if as_json else format_inspection(result))


@main.command("methods")
@click.option("--json", "as_json", is_flag=True)
def methods_cmd(as_json):
    """List the methods a module can be built with: engine, default config, what it is."""
    from .modules.methods import METHODS

    rows = [{"name": m.name, "engine": m.engine, "defaults": m.defaults, "doc": m.doc,
             "fusable": m.fusable, "lr": m.lr} for m in METHODS.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        defaults = " ".join(f"{k}={','.join(map(str, v)) or '[]' if isinstance(v, list) else v}"
                            for k, v in r["defaults"].items())
        click.echo(f"{r['name']:<14} {r['engine']:<9} {r['doc']}")
        click.echo(f"{'':<14} defaults: {defaults or '-'}; lr {r['lr']:g}"
                   + ("" if r["fusable"] else "; cannot be fused"))

def _register_commands() -> None:
    # Command families that live in their own files add themselves to `main` here (a function
    # call, not an import side effect, so `python -m adapterxl.cli` gets them too).
    from . import cli_experiments, cli_hub, cli_plan, cli_report

    cli_hub.register(main)
    cli_experiments.register(main)
    cli_report.register(main)
    cli_plan.register(main)


_register_commands()

if __name__ == "__main__":
    main()
