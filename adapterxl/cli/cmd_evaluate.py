"""`adapterxl evaluate`: zero-shot evaluation of a module, or a benchmark suite."""
from __future__ import annotations

from typing import get_args

import click

from ..errors import AdapterxlError
from ..settings import EVALUATE, Precision, Quantize
from ._options import DATA_DIR_HELP, complete_tasks, data_source, setting_option


def register(main: click.Group) -> None:
    """Add `evaluate` to the `adapterxl` group."""

    @main.command("evaluate")
    @click.option("--task", default=None, shell_complete=complete_tasks,
                  help="One task (or use --suite).")
    @click.option("--suite", type=click.Choice(["xtreme", "xtreme-r"]), default=None,
                  help="Every task of a benchmark in its languages, and the benchmark score.")
    @click.option("--module", "modules", multiple=True, required=True, metavar="[TASK=]DIR",
                  help="The module to evaluate. With --suite: TASK=DIR per task, or a DIR "
                       "holding one module per task (DIR/xnli, DIR/udpos, ...).")
    @click.option("--retrieval-module", default=None, metavar="DIR",
                  help="With --suite: the module whose representations BUCC, Tatoeba, LAReQA "
                       "and Mewsli-X use when no TASK=DIR names one (the paper: an "
                       "intermediate module).")
    @click.option("--languages", default="all", show_default=True, help="all or a comma list.")
    @click.option("--split", default="test", show_default=True,
                  help="Which split to evaluate on: train, validation or test.")
    @click.option("--data", default=None,
                  help="hf (Hugging Face datasets) or samples (bundled synthetic data) "
                       "[default: where the module's own training data came from: samples, "
                       "its --data-dir for its own task, else hf].")
    @click.option("--data-dir", default=None, metavar="DIR", help=DATA_DIR_HELP)
    @click.option("--output", "-o", default=None,
                  help="Results folder [default: <module>/eval; with --suite "
                       "runs/eval-<suite>].")
    @click.option("--predictions-dir", default=None, metavar="DIR",
                  help="Write predictions as DIR/<task>/<split>-<lang>.<ext> (XTREME's "
                       "layout).")
    @click.option("--model", default=None, help="Backbone [default: the module's].")
    @click.option("--precision", type=click.Choice(get_args(Precision)), default=None)
    @click.option("--quantize", type=click.Choice(get_args(Quantize)), default="none")
    @setting_option("--batch-size", spec=EVALUATE["batch_size"], default=64)
    @setting_option("--max-length", spec=EVALUATE["max_length"])
    @setting_option("--max-examples", spec=EVALUATE["max_examples"])
    @setting_option("--layer", spec=EVALUATE["layer"])
    @click.option("--lang-modules", default=None, metavar="DIR",
                  help="Swap the module's language module per language: DIR/lang-<code> "
                       "where it exists, else the one it was trained with.")
    @click.option("--force", is_flag=True,
                  help="Use the module on a backbone other than the one it was trained on "
                       "(the fingerprint check is skipped).")
    @click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
                  metavar="N", help="Resamples for the 95% confidence intervals in the "
                                    "results (0: none).")
    @click.option("--trust-remote-code", is_flag=True,
                  help="Run the backbone checkpoint's own Python model code (auto_map).")
    @click.option("--allow-pickle", is_flag=True,
                  help="Read a backbone stored as pickle (pytorch_model.bin).")
    def evaluate_cmd(task, suite, modules, retrieval_module, languages, output, **kw):
        """Zero-shot evaluation in every language; writes the XTREME submission layout."""
        from ..evaluation import evaluate, evaluate_suite, format_suite, format_table

        if (task is None) == (suite is None):
            raise AdapterxlError("give either --task or --suite")
        # not given: evaluation reads where the module's own training data came from
        kw["data"] = data_source(kw["data"], kw["data_dir"], default=None)
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
