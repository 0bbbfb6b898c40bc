"""`adapterxl report`, `adapterxl score` and `adapterxl analyze ...`: reports, scores of
prediction folders and analyses of experiment runs.
Thin, like every command: parse, call one library function, print."""
from __future__ import annotations

import json

import click


def register(main: click.Group) -> None:
    """Add `report`, `score` and the `analyze` group to the `adapterxl` group."""

    @main.command("report")
    @click.argument("run", type=click.Path(file_okay=False))
    @click.option("-o", "--output", default=None, metavar="DIR",
                  help="Where report.md and figures/ go [default: RUN/report].")
    @click.option("--target", default=None,
                  help="Target task of the per-language chart [default: the most frequent].")
    @click.option("--export", default=None, metavar="csv,json",
                  help="Also write the tables as tables/<name>.csv and/or report.json "
                       "(unrounded numbers, cells with dates).")
    def report(run, output, target, export):
        """Markdown tables and plots of a run: scores per task and language, gains over the
        no-intermediate baseline, XTREME scores, costs, scaling and order effects."""
        from ..experiments.report import build_report

        result = build_report(run, output, target=target,
                              export=[x for x in (export or "").split(",") if x])
        click.echo(result["report"])
        for path in result["figures"] + result["exported"]:
            click.echo(path)
        for note in result["notes"]:
            click.echo(f"note: {note}")

    @main.command("score")
    @click.argument("pred_dir", type=click.Path(file_okay=False))
    @click.argument("label_dir", type=click.Path(file_okay=False))
    @click.option("--suite", type=click.Choice(["xtreme", "xtreme-r"]), default="xtreme",
                  show_default=True, help="Which benchmark's tasks, languages and groups.")
    @click.option("--json", "as_json", is_flag=True,
                  help="Print JSON (every language, unrounded).")
    def score_cmd(pred_dir, label_dir, suite, as_json):
        """Score predictions in XTREME's layout (PRED_DIR/<task>/test-<lang>.<ext>) against
        labels in the same layout, exactly as XTREME's evaluate.py does: per language, per
        task and the benchmark score (percentages)."""
        from ..evaluation.xtreme_score import format_scores, score_predictions

        result = score_predictions(pred_dir, label_dir, suite)
        click.echo(json.dumps(result, indent=2) if as_json else format_scores(result))

    @main.group("analyze")
    def analyze():
        """Analyses of runs and languages."""

    @analyze.command("similarity")
    @click.argument("run", type=click.Path(file_okay=False))
    @click.option("--probe-task", default=None,
                  help="Task whose English dev examples probe the representations "
                       "[default: each pair's target task].")
    @click.option("--max-examples", type=int, default=64, show_default=True,
                  help="Probe examples per task.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def similarity_cmd(run, probe_task, max_examples, as_json):
        """Task similarity (linear CKA of representations, cosine of module weights) of each
        intermediate/target pair, and its Spearman correlation with the transfer gain."""
        from ..experiments.analyze import format_similarity, similarity

        result = similarity(run, probe_task=probe_task, max_examples=max_examples)
        click.echo(json.dumps(result, indent=2) if as_json else format_similarity(result))

    @analyze.command("typology")
    @click.option("--languages", required=True, metavar="CODES",
                  help="Comma list of ISO 639-1 or 639-3 codes, e.g. sw,yo,de,zh.")
    @click.option("--k", type=int, default=None, help="Size of a diverse subset (greedy max-min).")
    @click.option("--measure", default="typological", show_default=True,
                  type=click.Choice(["typological", "syntactic", "phonological", "inventory",
                                     "genetic"]),
                  help="URIEL distance used for the table and the subset.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def typology_cmd(languages, k, measure, as_json):
        """URIEL typological distances between languages (lang2vec's data) and a diverse
        subset."""
        from ..experiments.analyze import format_typology, typology

        result = typology(languages, k=k, measure=measure)
        click.echo(json.dumps(result, indent=2) if as_json else format_typology(result))
