"""Score a folder of predictions in XTREME's layout as XTREME's ``evaluate.py`` does.

Both folders hold ``<task>/test-<lang>.<ext>`` (``json`` for QA and Mewsli-X, ``jsonl`` for
XCOPA in XTREME-R, ``tsv`` otherwise). A task is scored when both folders have its folder;
then every language of the suite must have both files. Each file is read as ``evaluate.py``
reads it and scored with the metrics of ``scoring/metrics.py`` (which match its definitions);
values are percentages, averaged over languages; a task's score is its F1 or accuracy, QA
(EM + F1) / 2; a group's and the suite's score are given only when all their tasks are
scored.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import AdapterxlError
from ..scoring import metrics

# The tasks and languages of evaluate.py's XTREME_TASK2LANGS / XTREME_R_TASK2LANGS.
_UDPOS = ("af ar bg de el en es et eu fa fi fr he hi hu id it ja kk ko mr nl pt ru ta te th tl "
          "tr ur vi yo zh")
_PANX = ("ar he vi id jv ms tl eu ml ta te af nl en de el bn hi mr ur fa fr it pt es bg ru ja "
         "ka ko th sw yo my zh kk tr et fi hu")
_TATOEBA = ("ar he vi id jv tl eu ml ta te af nl de el bn hi mr ur fa fr it pt es bg ru ja ka "
            "ko th sw zh kk tr et fi hu")
_XNLI = "ar bg de el en es fr hi ru sw th tr ur vi zh"
_QA = {"xquad": "en es de el ru tr ar vi th zh hi", "mlqa": "en es de ar hi vi zh",
       "tydiqa": "en ar bn fi id ko ru sw te"}

LANGUAGES = {
    "xtreme": {"pawsx": "de en es fr ja ko zh", "xnli": _XNLI, "panx": _PANX, "udpos": _UDPOS,
               "bucc2018": "de fr ru zh", "tatoeba": _TATOEBA, **_QA},
    "xtreme-r": {"xnli": _XNLI, "panx": _PANX + " qu pl uk az lt pa gu ro",
                 "udpos": _UDPOS + " lt pl uk wo ro", "tatoeba": _TATOEBA + " az lt pl uk ro",
                 "xcopa": "et ht id it qu sw ta th tr vi zh", "lareqa": "",
                 "mewslix": "ar de en es fa ja pl ro ta tr uk",
                 **_QA, "xquad": _QA["xquad"] + " ro"},
}
GROUPS = {
    "xtreme": {"classification": ("pawsx", "xnli"), "tagging": ("udpos", "panx"),
               "qa": ("xquad", "mlqa", "tydiqa"), "retrieval": ("bucc2018", "tatoeba")},
    "xtreme-r": {"classification": ("xnli", "xcopa"), "tagging": ("udpos", "panx"),
                 "qa": ("xquad", "mlqa", "tydiqa"), "retrieval": ("tatoeba", "mewslix"),
                 "multi_choice": ("xcopa",)},
}
QA_TASKS = ("xquad", "mlqa", "tydiqa")


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise AdapterxlError(f"{path}: not UTF-8 text (byte {e.start})") from e


def _json(path: Path):
    try:
        return json.loads(_text(path))
    except json.JSONDecodeError as e:
        raise AdapterxlError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e


def _lines(path: Path) -> list[str]:
    # evaluate.py's read_label: every line stripped, a final newline ends the last line
    # (split as Python's universal newlines do: \n, \r\n or \r)
    text = _text(path).replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.strip() for line in lines]


def _sentences(path: Path) -> list[list[str]]:
    # evaluate.py's read_tag: blank lines end a sentence (each blank line, even repeated ones)
    out, current = [], []
    for line in _lines(path):
        if line:
            current.append(line)
        else:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _squad_answers(path: Path) -> dict[str, list[str]]:
    data = _json(path)
    data = data["data"] if isinstance(data, dict) and "data" in data else data
    try:
        return {qa["id"]: [a["text"] for a in qa["answers"]]
                for article in data for par in article["paragraphs"] for qa in par["qas"]}
    except (KeyError, TypeError) as e:
        raise AdapterxlError(f"{path}: expected SQuAD JSON (data > paragraphs > qas with id "
                             f"and answers), missing {e}") from None


def _xcopa_labels(path: Path) -> list:
    labels = []
    for n, line in enumerate(_text(path).split("\n"), 1):
        if not line.strip():
            continue  # json.loads would fail on it in evaluate.py; a final newline is usual
        try:
            labels.append(json.loads(line)["label"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise AdapterxlError(f"{path}:{n}: expected a JSON object with \"label\"") from None
    return labels


def _same_length(pred, gold, pred_path: Path, label_path: Path) -> None:
    if len(pred) != len(gold):
        raise AdapterxlError(f"{pred_path} has {len(pred)} examples but {label_path} has "
                             f"{len(gold)}")


def score_file(task: str, pred_path, label_path, lang: str) -> dict:
    """One language of one task: metric name -> percentage, as evaluate.py's
    ``evaluate_one_task``."""
    pred_path, label_path = Path(pred_path), Path(label_path)
    if task in ("pawsx", "xnli", "tatoeba", "xcopa"):
        read = _xcopa_labels if task == "xcopa" else _lines
        pred, gold = read(pred_path), read(label_path)
        _same_length(pred, gold, pred_path, label_path)
        if not gold:
            raise AdapterxlError(f"{label_path} is empty")
        return {"accuracy": 100 * metrics.accuracy(pred, gold)}
    if task in ("udpos", "panx"):
        pred, gold = _sentences(pred_path), _sentences(label_path)
        _same_length(pred, gold, pred_path, label_path)
        try:
            values = metrics.tagging_f1(gold, pred)
        except ValueError as e:
            raise AdapterxlError(f"{pred_path}: {e}") from None
        return {k: 100 * values[k] for k in ("f1", "precision", "recall")}
    if task == "bucc2018":
        def pairs(path):
            return {tuple(line.split("\t")) for line in _lines(path)}
        values = metrics.bucc_f1(pairs(pred_path), pairs(label_path))
        return {k: 100 * values[k] for k in ("f1", "precision", "recall")}
    if task in QA_TASKS:
        pred = _json(pred_path)
        if not isinstance(pred, dict):
            raise AdapterxlError(f"{pred_path}: expected a JSON object of question id -> answer")
        gold = _squad_answers(label_path)
        values = (metrics.mlqa(pred, gold, lang) if task == "mlqa"
                  else metrics.squad(pred, gold))
        return {"exact_match": 100 * values["exact_match"], "f1": 100 * values["f1"]}
    if task == "mewslix":
        pred, gold = _json(pred_path), _json(label_path)
        ids = list(gold)
        return {"map@20": 100 * metrics.map_at_k([list(pred.get(i, [])) for i in ids],
                                                 [{gold[i][0].strip()} for i in ids], k=20)}
    raise AdapterxlError(f"cannot score {task!r}: evaluate.py has no metric for it")


def _suffix(task: str, suite: str) -> str:
    if task in QA_TASKS or task == "mewslix":
        return "json"
    return "jsonl" if task in GROUPS[suite].get("multi_choice", ()) else "tsv"


def score_predictions(pred_dir, label_dir, suite: str = "xtreme") -> dict:
    """``{"suite", "groups": {group or "all_task": score}, "tasks": {task: {"per_language":
    {metric: {lang: value}}, "average": {metric: value}, "score": value}}}``, percentages, as
    evaluate.py's ``evaluate``."""
    if suite not in LANGUAGES:
        raise AdapterxlError(f"unknown suite {suite!r}; known: {', '.join(LANGUAGES)}")
    pred_dir, label_dir = Path(pred_dir), Path(label_dir)
    for folder, what in ((pred_dir, "predictions"), (label_dir, "labels")):
        if not folder.is_dir():
            raise AdapterxlError(f"{what} folder {str(folder)!r} does not exist")
    tasks = {}
    for task, langs in LANGUAGES[suite].items():
        if not ((pred_dir / task).is_dir() and (label_dir / task).is_dir()):
            continue
        per = {}
        for lang in langs.split():
            name = f"test-{lang}.{_suffix(task, suite)}"
            for path in (pred_dir / task / name, label_dir / task / name):
                if not path.is_file():
                    raise AdapterxlError(f"{path} is not available ({task} is scored over all "
                                         f"its {suite} languages)")
            for metric, value in score_file(task, pred_dir / task / name,
                                            label_dir / task / name, lang).items():
                per.setdefault(metric, {})[lang] = value
        average = {m: sum(v.values()) / len(v) for m, v in per.items()}
        if task in QA_TASKS:
            main = (average["exact_match"] + average["f1"]) / 2
        else:
            main = next((average[m] for m in ("f1", "accuracy", "map@20") if m in average),
                        None)
        tasks[task] = {"per_language": per, "average": average, "score": main}
    if not tasks:
        raise AdapterxlError(f"no {suite} task has a folder in both {pred_dir} and {label_dir} "
                             f"(tasks: {', '.join(LANGUAGES[suite])})")
    groups = {}
    if set(tasks) == set(LANGUAGES[suite]):
        groups["all_task"] = sum(t["score"] for t in tasks.values()) / len(tasks)
    for group, members in GROUPS[suite].items():
        if set(members) <= set(tasks):
            groups[group] = sum(tasks[t]["score"] for t in members) / len(members)
    return {"suite": suite, "groups": groups, "tasks": tasks}


def format_scores(result: dict) -> str:
    """Per task: the average of each metric and the task score; then the group scores."""
    lines = ["| task | languages | averages | score |", "|---|---|---|---|"]
    for task, r in result["tasks"].items():
        averages = ", ".join(f"{m} {v:.4f}" for m, v in r["average"].items())
        langs = len(next(iter(r["per_language"].values()), {}))
        score = "-" if r["score"] is None else f"{r['score']:.4f}"
        lines.append(f"| {task} | {langs} | {averages} | {score} |")
    if result["groups"]:
        lines.append("")
        lines += [f"{group}: {value:.4f}" for group, value in result["groups"].items()]
    return "\n".join(lines)
