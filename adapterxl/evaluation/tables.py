"""Results as markdown tables: one task's languages (scores x100, QA as F1/EM, 95% intervals)
and a benchmark suite's tasks with its score."""
from __future__ import annotations

QA_METRICS = ("squad", "squad_v2", "mlqa")


def _cell(metric: str, values: dict | None) -> str:
    if values is None:
        return "-"
    if metric in QA_METRICS:
        return f"{100 * values['f1']:.1f}/{100 * values['exact_match']:.1f}"
    from ..scoring.metrics import primary

    return f"{100 * primary(metric, values):.1f}"


def format_table(result: dict) -> str:
    """Per-language scores (x100; QA as F1/EM) and the average, as a markdown table."""
    per = result["per_language"]
    langs = list(per)
    metric = result["metric"]
    head = "| " + " | ".join(["task"] + langs + ["avg"]) + " |"
    rule = "|" + "---|" * (len(langs) + 2)
    row = "| " + " | ".join([result["task"]] + [_cell(metric, per[lang]) for lang in langs]
                            + [_cell(metric, result["average"])]) + " |"
    lines = [head, rule, row]
    ci = (result.get("ci95") or {})
    if ci.get("per_language") and any(ci["per_language"].values()):
        def span(v):
            return "-" if not v else f"{100 * v[0]:.1f}–{100 * v[1]:.1f}"
        lines.append("| 95% CI | " + " | ".join(span(ci["per_language"].get(lang))
                                                for lang in langs)
                     + f" | {span(ci.get('average'))} |")
    if result.get("language_modules"):
        used = result["language_modules"]
        lines.insert(2 + 1, "| language module | " + " | ".join(used.get(lang, "-")
                                                                for lang in langs) + " | |")
    if result.get("skipped_languages"):
        lines.append(f"(no {result['split']} data for: {', '.join(result['skipped_languages'])})")
    for lang, n in (result.get("partially_labeled") or {}).items():
        lines.append(f"({lang}: scored on its {n['labeled']} labeled rows; {n['unlabeled']} "
                     f"unlabeled rows predicted only)")
    if per and result.get("unlabeled_languages"):
        lines.append(f"(no labels in the {result['split']} split for: "
                     f"{', '.join(result['unlabeled_languages'])}: predictions only, in "
                     f"{result['predictions']})")
    if not per:
        lines.append(f"(no labels in the {result['split']} split: predictions only, in "
                     f"{result['predictions']})")
    return "\n".join(lines)


def format_suite(summary: dict) -> str:
    """The benchmark table: one row per task (its language average; QA as F1/EM) and the
    suite score (mean of task scores, QA counted as (EM+F1)/2)."""
    lines = ["| task | metric | languages | score |", "|---|---|---|---|"]
    for name, r in summary["tasks"].items():
        lines.append(f"| {name} | {r['metric']} | {len(r['per_language']) or len(r['examples'])}"
                     f" | {_cell(r['metric'], r['average'])} |")
    for name in summary["missing"]:
        lines.append(f"| {name} | - | - | no module |")
    score = summary["score"]
    label = summary["suite"].upper().replace("XTREME-R", "XTREME-R")
    lines.append("")
    lines.append(f"{label} score: " + ("-" if score is None else f"{100 * score:.1f}")
                 + ("" if summary["complete"] else
                    f" (partial: {len(summary['task_scores'])} of "
                    f"{len(summary['task_scores']) + len(summary['missing'])} tasks scored)"))
    return "\n".join(lines)
