"""Local files in their original formats, turned into canonical rows (docs/FORMATS.md).

Readers for single files:

* ``read_squad_json``   SQuAD v1.1 / v2.0 JSON; XQuAD, MLQA and TyDiQA-GoldP share it
* ``read_conllu``       Universal Dependencies CoNLL-U (one word per line, 10 columns)
* ``read_conll_columns`` token and tag per line, blank line between sentences (XTREME's
                        panx/udpos ``.tsv`` files, CoNLL-2003 style, optional ``de:`` prefixes)
* ``read_tsv``          (pair) classification / regression TSV with or without a header
* ``read_jsonl``        one JSON object per line (canonical keys or the dataset's columns)
* ``read_retrieval_jsonl``, ``read_parallel_tsv``, ``read_bucc``, ``read_tatoeba``
                        retrieval corpora ``{"queries", "candidates", "gold"}``
* ``read_text_lines``   one text per line (mlm)

Discovery (``local_files``, ``load_local``, ``local_languages``) understands two layouts:

(a) adapterxl's own: ``<root>/<split>.<lang>.<ext>`` (``<split>.<ext>`` for the training
    language or a single-language task), split ``train``, ``validation`` (also ``dev``,
    ``val``) or ``test``;
(b) what XTREME's ``scripts/download_data.sh`` leaves in ``download/``; ``root`` may be that
    folder or the task's folder inside it (the file names are each task's `xtreme_files`
    in tasks/catalog.yaml).

Errors are one-line ``AdapterxlError``s naming ``file:line`` (or the question id for JSON).
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from ..errors import AdapterxlError
from ..tasks import SPLITS, xtreme_candidates
from . import validate

SPLIT_ALIASES = {"train": ("train",), "validation": ("validation", "dev", "val"),
                 "test": ("test",)}

# File extensions tried in the simple layout, per task format, in order of preference.
EXTENSIONS = {
    "classification": ("jsonl", "tsv", "csv"),
    "pair_classification": ("jsonl", "tsv", "csv"),
    "regression": ("jsonl", "tsv", "csv"),
    "tagging": ("jsonl", "conllu", "conll", "tsv", "txt"),
    "qa": ("jsonl", "json"),
    "multiple_choice": ("jsonl", "tsv"),
    "retrieval": ("jsonl", "tsv"),
    "mlm": ("jsonl", "txt"),
}
ALL_EXTENSIONS = ("jsonl", "tsv", "csv", "json", "conllu", "conll", "txt")

CONLLU_COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps",
                  "misc")

# Column names that mark the first line of a TSV file as a header.
_KNOWN_COLUMNS = {"text", "label", "labels", "premise", "hypothesis", "sentence", "sentence1",
                  "sentence2", "sentence_a", "sentence_b", "question", "question1", "question2",
                  "context", "id", "idx", "guid", "pairid", "score", "similarity_score",
                  "gold_label", "tokens", "tags", "answers", "choices", "title", "language",
                  "lang"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_LANG_PREFIX = re.compile(r"([a-z]{2,3}):(.+)")
_CONLLU_ID = re.compile(r"\d+([-.]\d+)?")


# --------------------------------------------------------------------------- helpers


def _read_lines(path) -> list[str]:
    """The file's lines without line endings; an error if it is missing, not UTF-8 or empty.
    Splits on "\\n" only: U+2028 and friends can occur inside sentences."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as e:
        raise AdapterxlError(f"{path} does not exist") from e
    except UnicodeDecodeError as e:
        raise AdapterxlError(f"{path}: not UTF-8 text (byte {e.start})") from e
    if not text.strip():
        raise AdapterxlError(f"{path} is empty")
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _nonempty(rows, path, what="examples"):
    if not rows:
        raise AdapterxlError(f"{path} is empty (no {what})")
    return rows


def _task_name(task) -> str:
    return getattr(task, "name", None) or "the task"


class _Labels:
    """Maps label / tag strings to indices of ``task.labels`` (kept as strings when the task
    has no label list). Digit strings are accepted as indices (PAWS-X writes 0 / 1)."""

    def __init__(self, task):
        self.task = task
        labels = getattr(task, "labels", None) if task is not None else None
        self.labels = tuple(labels) if labels else None
        self.index = {label: i for i, label in enumerate(self.labels or ())}
        self.regression = getattr(task, "format", None) == "regression"

    def __call__(self, value: str, path, line):
        if self.regression:
            try:
                return float(value)
            except ValueError:
                raise AdapterxlError(f"{path}:{line}: label {value!r} is not a number "
                                     f"({_task_name(self.task)} is a regression task)") from None
        if self.labels is None:
            return value
        if value in self.index:
            return self.index[value]
        if value == "contradictory" and "contradiction" in self.index:  # XNLI's raw spelling
            return self.index["contradiction"]
        if re.fullmatch(r"[0-9]+", value) and int(value) < len(self.labels):
            return int(value)
        raise AdapterxlError(f"{path}:{line}: label {value!r} is not in the label set of "
                             f"{_task_name(self.task)} ({', '.join(self.labels)})")


def _split_tsv(line: str, delimiter: str = "\t", unquote: bool = True) -> list[str]:
    """Fields separated by ``delimiter``. Fields quoted the way Python's csv module writes
    them are unquoted; a line that is not valid csv is split as it is. ``unquote=False``
    splits as it is, as XTREME's xnli/pawsx processors read their files (csv with no quote
    character), so the model sees the quote marks XTREME's preprocessing wrote."""
    if delimiter != "\t":
        return next(csv.reader([line], delimiter=delimiter, strict=False))
    if unquote and '"' in line:
        try:
            return next(csv.reader([line], delimiter="\t", strict=True))
        except csv.Error:
            pass
    return line.split("\t")


def _convert(task, record: dict, where: str) -> dict:
    from .convert import convert  # written alongside; imported late so this module loads alone

    return convert(task, record, where)


# --------------------------------------------------------------------------- QA


def read_squad_json(path) -> list[dict]:
    """SQuAD-format JSON -> qa rows ``{"id", "question", "context", "answers"}``.

    ``is_impossible`` questions get ``answers == []``; a question without ``answers``, or
    with only XTREME's placeholder ``[{"answer_start": 0, "text": ""}]`` (the download script
    strips test annotations that way), gets ``answers None``. Every answer must be found at
    its ``answer_start`` in the context."""
    path = Path(path)
    lines = _read_lines(path)
    try:
        data = json.loads("\n".join(lines))
    except json.JSONDecodeError as e:
        raise AdapterxlError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e
    except RecursionError:
        raise AdapterxlError(f"{path}: JSON nested too deeply") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise AdapterxlError(f"{path}: expected SQuAD JSON, an object with a \"data\" list of "
                             f"articles with \"paragraphs\"")
    rows = []
    for a, article in enumerate(data["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise AdapterxlError(f"{path}: article {a} has no \"paragraphs\" list")
        for p, par in enumerate(paragraphs):
            if not isinstance(par, dict) or not isinstance(par.get("context"), str) \
                    or not isinstance(par.get("qas"), list):
                raise AdapterxlError(f"{path}: article {a}, paragraph {p}: expected "
                                     f"\"context\" (a string) and \"qas\" (a list)")
            context = par["context"]
            for q, qa in enumerate(par["qas"]):
                rows.append(_squad_question(path, context, qa, f"article {a}, paragraph {p}, "
                                                               f"question {q}"))
    return _nonempty(rows, path, "questions")


def _squad_question(path, context: str, qa, position: str) -> dict:
    if not isinstance(qa, dict) or "question" not in qa or "id" not in qa:
        raise AdapterxlError(f"{path}: {position}: expected \"id\" and \"question\"")
    qid = str(qa["id"])
    answers = qa.get("answers")
    if qa.get("is_impossible"):
        answers = []
    elif answers is None or answers == [{"answer_start": 0, "text": ""}]:
        answers = None
    else:
        if not isinstance(answers, list):
            raise AdapterxlError(f"{path}: question {qid}: \"answers\" is not a list")
        checked = []
        for ans in answers:
            if not isinstance(ans, dict) or not isinstance(ans.get("text"), str) \
                    or not isinstance(ans.get("answer_start"), int):
                raise AdapterxlError(f"{path}: question {qid}: expected answers like "
                                     f"{{\"text\": str, \"answer_start\": int}}, found {ans!r}")
            text, start = ans["text"], ans["answer_start"]
            found = context[start:start + len(text)] if start >= 0 else ""
            if not text or found != text:
                raise AdapterxlError(f"{path}: question {qid}: answer {text!r} is not at "
                                     f"character {start} of its context (found {found!r})")
            checked.append({"text": text, "start": start})
        answers = checked
    return {"id": qid, "question": str(qa["question"]), "context": context, "answers": answers}


# --------------------------------------------------------------------------- tagging


# XTREME converts UD with ud-conversion-tools' ``--replace_subtokens_with_fused_forms``: a
# multiword token becomes one word, its surface form, carrying the tags of the word of its span
# that is closest to the root; ties are broken by this part-of-speech order (per language).
_SPANHEAD_ORDER = {
    "default": "VERB NOUN PROPN PRON ADJ NUM ADV INTJ AUX ADP DET PART CCONJ SCONJ X PUNCT",
    "es": "VERB AUX PRON ADP DET",
    "fr": "VERB AUX PRON NOUN ADJ ADV ADP DET PART SCONJ CONJ",
    "it": "VERB AUX ADV PRON ADP DET INTJ",
}


def _spanhead(span, parents, upos, order) -> int:
    """The word of a multiword span XTREME's conversion keeps: fewest ancestors in the graph
    of basic and enhanced heads; among equals the first with the best-ranked UPOS."""
    def ancestors(x):
        seen, todo = set(), [x]
        while todo:
            for h in parents.get(todo.pop(), ()):
                if h not in seen:
                    seen.add(h)
                    todo.append(h)
        return len(seen)

    depth = {x: ancestors(x) for x in span}
    highest = [x for x in span if depth[x] == min(depth.values())]
    if len(highest) == 1:
        return highest[0]
    ranked = [x for x in highest if upos[x] in order]  # XTREME would crash on the others
    return min(ranked, key=lambda x: order.index(upos[x])) if ranked else highest[0]


def _surface_sentence(words, spans, parents, lang):
    """``words`` [(id, form, tag, upos, line)] -> [(form, tag, line)] with each multiword span
    replaced by its surface form, as XTREME's conversion writes it."""
    order = _SPANHEAD_ORDER.get(lang, _SPANHEAD_ORDER["default"]).split()
    upos = {w[0]: w[3] for w in words}
    keep = {}  # spanhead id -> fused form
    dropped = set()
    for first, last, form in spans:
        span = [i for i in range(first, last + 1) if i in upos]
        if not span:
            continue
        head = _spanhead(span, parents, upos, order)
        keep[head] = form
        dropped.update(i for i in span if i != head)
    return [(keep.get(i, form), tag, n) for i, form, tag, _, n in words if i not in dropped]


def read_conllu(path, column: str = "upos", task=None, multiword: str = "surface",
                lang: str | None = None) -> list[dict]:
    """CoNLL-U -> tagging rows ``{"tokens", "tags"}`` with the tags of ``column`` (upos,
    xpos, deprel, ...). Comments and empty nodes (``1.1``) are skipped.

    ``multiword="surface"`` (default) reads the file as XTREME's UD-POS preprocessing does:
    a multiword token (``2-3 im`` over ``in`` + ``dem``) is one token, its surface form,
    tagged like the word of the span closest to the root (``_spanhead``); spaces and U+200C
    inside a form are removed; a sentence whose forms are all ``_`` (a treebank without its
    text) is dropped. ``multiword="split"`` keeps the syntactic words instead. ``lang``
    picks XTREME's per-language tie-break (es, fr, it; default: from the file name
    ``<lang>_<treebank>-ud-...``). A sentence whose tags are all ``_`` is unlabeled
    (``tags None``). With ``task``, tags map to ``task.labels``."""
    path = Path(path)
    if column.lower() not in CONLLU_COLUMNS[1:]:
        raise AdapterxlError(f"unknown CoNLL-U column {column!r}; known: "
                             f"{', '.join(CONLLU_COLUMNS[1:])}")
    if multiword not in ("surface", "split"):
        raise AdapterxlError(f"multiword must be 'surface' or 'split', not {multiword!r}")
    surface = multiword == "surface"
    if lang is None:
        lang = path.name.split("_")[0] if "_" in path.name else "default"
    col = CONLLU_COLUMNS.index(column.lower())
    label = _Labels(task)
    rows = []
    words, spans, parents = [], [], {}

    def flush():
        if not words:
            return
        if not all(w[2] == "_" for w in words):
            for w in words:  # every word's tag is checked, also those a span drops
                label(w[2], path, w[4])
        items = [(w[1], w[2], w[4]) for w in words]
        if surface:
            items = _surface_sentence(words, spans, parents, lang)
            items = [("".join(f.replace("\u200c", "").split(" ")), t, n) for f, t, n in items]
            blank = sum(f == "_" for f, _, _ in items)
            if blank and blank >= len(items) - 1:  # XTREME keeps these only when few are "_"
                items = []
        if items:
            for form, _, n in items:
                validate.token(form, f"{path}:{n}")
            tokens = [f for f, _, _ in items]
            if all(t == "_" for _, t, _ in items):
                rows.append({"tokens": tokens, "tags": None})
            else:
                rows.append({"tokens": tokens, "tags": [label(t, path, n) for _, t, n in items]})
        words.clear()
        spans.clear()
        parents.clear()

    for n, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            flush()
            continue
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 10:
            raise AdapterxlError(f"{path}:{n}: expected 10 tab-separated CoNLL-U columns "
                                 f"(ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC), "
                                 f"found {len(fields)}")
        if not _CONLLU_ID.fullmatch(fields[0]):
            raise AdapterxlError(f"{path}:{n}: expected a word id (1, 2-3 or 1.1) in the first "
                                 f"column, found {fields[0]!r}")
        if "-" in fields[0]:
            first, last = map(int, fields[0].split("-"))
            spans.append((first, last, fields[1]))
            continue
        if not fields[0].isdigit():
            continue  # empty node
        word = int(fields[0])
        heads = {int(h) for h in [fields[6]] + [d.split(":", 1)[0] for d in fields[8].split("|")]
                 if h.isdigit()}
        parents[word] = heads
        if not surface:
            validate.token(fields[1], f"{path}:{n}")
        words.append((word, fields[1], fields[col], fields[3], n))
    flush()
    return _nonempty(rows, path, "sentences")


def _looks_like_conllu(lines) -> bool:
    for line in lines:
        if line.strip() and not line.startswith("#"):
            fields = line.split("\t")
            return len(fields) == 10 and bool(_CONLLU_ID.fullmatch(fields[0]))
    return False


def read_conll_columns(path, task=None) -> list[dict]:
    """Token-per-line column files -> tagging rows ``{"tokens", "tags"}``.

    Each line is a token and its tag (tab-separated, or whitespace-separated when the file has
    no tabs; with more columns the tag is the last one, as in CoNLL-2003), a blank line ends a
    sentence, ``-DOCSTART-`` lines are skipped. A file of bare tokens (XTREME's test files) is
    unlabeled (``tags None``). When every token carries the same ``xx:`` language prefix
    (PAN-X's raw files: ``de:Berlin``) the prefix is removed. A 10-column file with word ids
    is read as CoNLL-U (XTREME's ``.conll`` UD conversions)."""
    path = Path(path)
    lines = _read_lines(path)
    if _looks_like_conllu(lines):
        return read_conllu(path, task=task)
    tabbed = any("\t" in line for line in lines)
    entries = []  # (line number, fields) per token line, None at sentence boundaries
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("-DOCSTART-"):
            entries.append(None)
            continue
        if tabbed:
            fields = [f.strip() for f in line.split("\t")]
            while len(fields) > 1 and not fields[-1]:
                fields.pop()  # trailing tabs
        else:
            fields = line.split()
        entries.append((n, fields))
    token_lines = [e for e in entries if e is not None]
    if not token_lines:
        raise AdapterxlError(f"{path} is empty (no tokens)")
    first_n, first = token_lines[0]
    tagged = len(first) >= 2
    prefix = None
    m = _LANG_PREFIX.fullmatch(first[0])
    if m and all(f[0].startswith(m.group(1) + ":") and len(f[0]) > len(m.group(1)) + 1
                 for _, f in token_lines):
        prefix = len(m.group(1)) + 1
    sep = "a tab" if tabbed else "spaces"
    label = _Labels(task)
    rows, tokens, tags = [], [], []
    for entry in entries + [None]:
        if entry is None:
            if tokens:
                rows.append({"tokens": tokens, "tags": tags if tagged else None})
                tokens, tags = [], []
            continue
        n, fields = entry
        if tagged and len(fields) < 2:
            raise AdapterxlError(f"{path}:{n}: expected a token and its tag separated by {sep} "
                                 f"(as on line {first_n}), found {lines[n - 1]!r}")
        if not tagged and len(fields) > 1:
            raise AdapterxlError(f"{path}:{n}: expected one token per line (line {first_n} has "
                                 f"no tag), found {len(fields)} columns in {lines[n - 1]!r}")
        token = fields[0][prefix:] if prefix else fields[0]
        validate.token(token, f"{path}:{n}")
        tokens.append(token)
        if tagged:
            tags.append(label(fields[-1], path, n))
    return _nonempty(rows, path, "sentences")


# --------------------------------------------------------------------------- TSV / JSONL


def _is_label(task, value: str) -> bool:
    if getattr(task, "format", None) == "regression":
        try:
            float(value)
            return True
        except ValueError:
            return False
    labels = getattr(task, "labels", None) or ()
    return value in labels or (re.fullmatch(r"[0-9]+", value) is not None
                               and int(value) < len(labels))


def _looks_like_header(task, fields: list[str]) -> bool:
    """A first TSV line is a header when every field is a column-like name, its last field is
    not a label, and at least one field is a known column name."""
    known = set(_KNOWN_COLUMNS)
    for attr in ("text_fields", "label_field"):
        value = getattr(task, attr, None)
        known.update([value] if isinstance(value, str) else (value or ()))
    for value in (getattr(task, "fields", None) or {}).values():
        if isinstance(value, str):
            known.add(value)
        elif isinstance(value, (list, tuple)):
            known.update(v for v in value if isinstance(v, str))
    known = {k.lower() for k in known}
    return (all(_IDENTIFIER.fullmatch(f.strip()) for f in fields)
            and not _is_label(task, fields[-1].strip())
            and any(f.strip().lower() in known for f in fields))


def read_tsv(task, path, header: bool | None = None, delimiter: str = "\t",
             unquote: bool = True) -> list[dict]:
    """A TSV file (or CSV, ``delimiter=","``: stsb-multi-mt's ``s1,s2,score``) -> canonical
    rows. ``unquote=False`` keeps quote marks (XTREME's own reading of its xnli/pawsx files).

    With a header row (``header=None``: detected), each line becomes a record keyed by the
    header and goes through ``data.convert.convert`` (dataset columns or canonical keys).
    Without one the columns are positional, as XTREME writes them: ``text[, label]`` for
    classification, ``first, second[, label]`` for pair classification and regression (the
    label column is absent in XTREME's test files: ``label None``); tagging files are token
    columns (``read_conll_columns``)."""
    path = Path(path)
    fmt = getattr(task, "format", None)
    lines = _read_lines(path)
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    first_n, first_line = numbered[0]
    first = _split_tsv(first_line, delimiter, unquote)
    if header is None:
        header = fmt != "tagging" and _looks_like_header(task, first)
    if header:
        names = [f.strip() for f in first]
        if len(set(names)) != len(names) or not all(names):
            raise AdapterxlError(f"{path}:{first_n}: the header has empty or repeated column "
                                 f"names: {first_line!r}")
        rows = []
        for n, line in numbered[1:]:
            fields = _split_tsv(line, delimiter, unquote)
            if len(fields) > len(names):
                raise AdapterxlError(f"{path}:{n}: {len(fields)} fields but the header on line "
                                     f"{first_n} names {len(names)} columns")
            record = dict(zip(names, fields))
            record.update({name: None for name in names[len(fields):]})
            rows.append(_convert(task, record, f"{path}:{n}"))
        return _nonempty(rows, path)
    if fmt == "tagging":
        return read_conll_columns(path, task)
    n_text = {"classification": 1, "pair_classification": 2, "regression": 2}.get(fmt)
    if n_text is None:
        raise AdapterxlError(f"{path}:{first_n}: a TSV file for {_task_name(task)} ({fmt}) needs "
                             f"a header row naming its columns")
    shape = "text[, label]" if n_text == 1 else "first, second[, label]"
    sep = "tab" if delimiter == "\t" else "comma"
    label = _Labels(task)
    rows, width = [], None
    for n, line in numbered:
        fields = _split_tsv(line, delimiter, unquote)
        if len(fields) not in (n_text, n_text + 1):
            raise AdapterxlError(f"{path}:{n}: expected {n_text} or {n_text + 1} "
                                 f"{sep}-separated columns ({shape}), found {len(fields)}")
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise AdapterxlError(f"{path}:{n}: {len(fields)} columns but line {first_n} has "
                                 f"{width} ({shape})")
        value = fields[n_text].strip() if len(fields) > n_text else ""
        hidden = value == "" or (value == "-1" and fmt != "regression")
        rows.append(validate.row(task, {"text": tuple(fields[:n_text]),
                                        "label": None if hidden else label(value, path, n)},
                                 f"{path}:{n}"))
    return rows


def read_jsonl(task, path) -> list[dict]:
    """One JSON object per line (canonical keys or the dataset's columns) -> canonical rows,
    each through ``data.convert.convert``. Blank lines are skipped."""
    path = Path(path)
    rows = []
    for n, record in _jsonl_records(path):
        rows.append(_convert(task, record, f"{path}:{n}"))
    return _nonempty(rows, path)


def _jsonl_records(path):
    for n, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise AdapterxlError(f"{path}:{n}: not valid JSON ({e.msg})") from e
        except RecursionError:
            raise AdapterxlError(f"{path}:{n}: JSON nested too deeply") from None
        if not isinstance(record, dict):
            raise AdapterxlError(f"{path}:{n}: expected a JSON object per line, found "
                                 f"{type(record).__name__}")
        yield n, record


def read_text_lines(path) -> list[dict]:
    """One text per non-blank line -> mlm rows ``{"text": str}``."""
    rows = [{"text": line.strip()} for line in _read_lines(path) if line.strip()]
    return _nonempty(rows, path, "lines")


# --------------------------------------------------------------------------- retrieval


def _corpus(queries, candidates, gold) -> dict:
    return {"queries": queries, "candidates": candidates, "gold": gold}


def read_retrieval_jsonl(path) -> dict:
    """Lines ``{"query": text, "id": .., "gold": [candidate ids]}`` and ``{"candidate": text,
    "id": ..}`` -> a corpus. ``gold None`` when no query has ``gold`` (hidden test)."""
    path = Path(path)
    queries, candidates, gold, gold_lines = [], [], {}, {}
    qids, cids = set(), set()
    first_query = None
    for n, record in _jsonl_records(path):
        kind = "query" if "query" in record else "candidate" if "candidate" in record else None
        if kind is None or "id" not in record or not isinstance(record[kind], str):
            raise AdapterxlError(f"{path}:{n}: expected {{\"query\": text, \"id\": .., \"gold\": "
                                 f"[..]}} or {{\"candidate\": text, \"id\": ..}}")
        item_id = str(record["id"])
        seen = qids if kind == "query" else cids
        if item_id in seen:
            raise AdapterxlError(f"{path}:{n}: {kind} id {item_id!r} appears twice")
        seen.add(item_id)
        if kind == "candidate":
            candidates.append({"id": item_id, "text": record["candidate"]})
            continue
        queries.append({"id": item_id, "text": record["query"]})
        has_gold = record.get("gold") is not None
        if first_query is None:
            first_query = (n, has_gold)
        elif has_gold != first_query[1]:
            raise AdapterxlError(f"{path}:{n}: query {'has' if has_gold else 'lacks'} \"gold\" "
                                 f"but the one on line {first_query[0]} "
                                 f"{'does not' if has_gold else 'does'}")
        if has_gold:
            ids = record["gold"]
            if not isinstance(ids, list):
                raise AdapterxlError(f"{path}:{n}: \"gold\" must be a list of candidate ids")
            gold[item_id] = [str(c) for c in ids]
            gold_lines[item_id] = n
    if not queries or not candidates:
        raise AdapterxlError(f"{path} is empty (needs queries and candidates, found "
                             f"{len(queries)} and {len(candidates)})")
    for qid, ids in gold.items():
        for c in ids:
            if c not in cids:
                raise AdapterxlError(f"{path}:{gold_lines[qid]}: gold candidate {c!r} of query "
                                     f"{qid!r} is not a candidate in the file")
    return _corpus(queries, candidates, gold if first_query[1] else None)


def _sentences(path, role: str) -> list[str]:
    texts = []
    for n, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            raise AdapterxlError(f"{path}:{n}: empty line (expected one {role} sentence per "
                                 f"line, aligned by line number)")
        texts.append(line.strip())
    return texts


def read_parallel_tsv(path, lang: str, trg_lang: str = "en") -> dict:
    """``sentence<TAB>translation`` per line -> an aligned retrieval corpus (query i's gold is
    candidate i), ids ``<lang>-<i>`` and ``<trg_lang>-<i>``."""
    path = Path(path)
    queries, candidates = [], []
    for n, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        fields = _split_tsv(line)
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise AdapterxlError(f"{path}:{n}: expected a sentence and its translation "
                                 f"separated by a tab")
        i = len(queries)
        queries.append({"id": f"{lang}-{i}", "text": fields[0].strip()})
        candidates.append({"id": f"{trg_lang}-{i}", "text": fields[1].strip()})
    return _corpus(queries, candidates, {q["id"]: [c["id"]] for q, c in zip(queries, candidates)})


def read_tatoeba(src_path, trg_path, lang: str, gold="aligned", trg_lang: str = "en") -> dict:
    """Two line-aligned sentence files -> a corpus: queries are ``src_path``'s sentences
    (ids ``<lang>-<i>``), candidates ``trg_path``'s (``<trg_lang>-<i>``).

    ``gold``: ``"aligned"`` (line i translates line i, as in LASER's ``tatoeba.deu-eng.*``),
    ``None`` (hidden: XTREME sorts its ``de-en.en`` file), or the path of an XTREME label file:
    line k holds, for candidate (English) sentence k, the 0-based line number of its
    translation in ``src_path`` (the orientation of XTREME's labels and of adapterxl's own
    Tatoeba prediction files)."""
    src_path, trg_path = Path(src_path), Path(trg_path)
    src = _sentences(src_path, lang)
    trg = _sentences(trg_path, trg_lang)
    queries = [{"id": f"{lang}-{i}", "text": t} for i, t in enumerate(src)]
    candidates = [{"id": f"{trg_lang}-{i}", "text": t} for i, t in enumerate(trg)]
    if gold is None:
        return _corpus(queries, candidates, None)
    if gold == "aligned":
        if len(src) != len(trg):
            raise AdapterxlError(f"{src_path} has {len(src)} sentences but {trg_path} has "
                                 f"{len(trg)}; aligned files need the same number of lines")
        return _corpus(queries, candidates, {q["id"]: [c["id"]] for q, c in zip(queries,
                                                                                candidates)})
    gold_path = Path(gold)
    index = _read_lines(gold_path)
    if len(index) != len(trg):
        raise AdapterxlError(f"{gold_path} has {len(index)} lines but {trg_path} has "
                             f"{len(trg)} sentences (expected, per {trg_lang} sentence, the line "
                             f"number of its translation in {src_path.name})")
    mapping = {}
    for n, line in enumerate(index, 1):
        value = line.strip()
        if not value.isdigit() or int(value) >= len(src):
            raise AdapterxlError(f"{gold_path}:{n}: expected a line number of {src_path} "
                                 f"(0..{len(src) - 1}), found {value!r}")
        mapping.setdefault(queries[int(value)]["id"], []).append(candidates[n - 1]["id"])
    return _corpus(queries, candidates, mapping)


def _bucc_sentences(path) -> list[dict]:
    items, seen = [], set()
    for n, line in enumerate(_read_lines(path), 1):
        if not line.strip():
            continue
        fields = line.split("\t", 1)
        if len(fields) != 2 or not fields[0].strip():
            raise AdapterxlError(f"{path}:{n}: expected 'id<TAB>sentence' (like "
                                 f"de-000000001<TAB>...), found {line[:60]!r}")
        item_id = fields[0].strip()
        if item_id in seen:
            raise AdapterxlError(f"{path}:{n}: id {item_id!r} appears twice")
        seen.add(item_id)
        items.append({"id": item_id, "text": fields[1].strip()})
    return _nonempty(items, path, "sentences")


def _unify(items) -> tuple[list[dict], list[str]]:
    """XTREME's BUCC mining embeds each distinct sentence once (the first id holding it) and
    afterwards drops every pair whose sentence occurs more than once in its side
    (``text_load_unify`` and ``read_sent2id`` in its ``utils_retrieve.py``). Returns the
    distinct items and the ids of those that were repeated."""
    first, count = {}, {}
    for item in items:
        first.setdefault(item["text"], item)
        count[item["text"]] = count.get(item["text"], 0) + 1
    return list(first.values()), [first[t]["id"] for t, c in count.items() if c > 1]


def read_bucc_files(src_path, trg_path, gold_path=None) -> dict:
    """BUCC 2018 sentence files (``id<TAB>sentence``) and gold pairs (``src_id<TAB>trg_id``)
    -> a corpus; ``gold None`` without a gold file.

    As in XTREME, a sentence text that occurs more than once in a side is mined once (under
    its first id) and listed in ``corpus["repeated"]`` (``{"queries": ids, "candidates":
    ids}``): pairs with it are dropped before the threshold is tuned and applied. The gold
    pairs are kept whole, so a gold pair with a repeated sentence counts as missed."""
    all_queries = _bucc_sentences(src_path)
    all_candidates = _bucc_sentences(trg_path)
    queries, repeated_q = _unify(all_queries)
    candidates, repeated_c = _unify(all_candidates)
    repeated = {"queries": repeated_q, "candidates": repeated_c}
    if gold_path is None:
        return _corpus(queries, candidates, None) | {"repeated": repeated}
    qids = {q["id"] for q in all_queries}
    cids = {c["id"] for c in all_candidates}
    gold = {}
    for n, line in enumerate(_read_lines(gold_path), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise AdapterxlError(f"{gold_path}:{n}: expected 'source_id<TAB>english_id', found "
                                 f"{line!r}")
        src, trg = fields
        if src not in qids:
            raise AdapterxlError(f"{gold_path}:{n}: {src!r} is not an id in {src_path}")
        if trg not in cids:
            raise AdapterxlError(f"{gold_path}:{n}: {trg!r} is not an id in {trg_path}")
        gold.setdefault(src, []).append(trg)
    return _corpus(queries, candidates, gold) | {"repeated": repeated}


BUCC_SPLITS = {"validation": ("dev", "sample"), "dev": ("dev", "sample"),
               "sample": ("sample",), "test": ("test", "training"), "training": ("training",)}


def _bucc_candidates(lang: str, split: str, trg_lang: str = "en"):
    """(required files, gold file) relative to the bucc2018 folder, in order of preference:
    XTREME's renamed files, then the original tarballs' ``de-en/de-en.sample.*`` names."""
    pair = f"{lang}-{trg_lang}"
    for name in BUCC_SPLITS.get(split, (split,)):
        for folder in ("", f"{pair}/"):
            stem = f"{folder}{pair}.{name}"
            yield [f"{stem}.{lang}", f"{stem}.{trg_lang}"], f"{stem}.gold"


def read_bucc(directory, lang: str, split: str, trg_lang: str = "en") -> dict:
    """The BUCC 2018 corpus of one language pair and split (``dev``/``validation`` or
    ``test``) from a folder holding ``<lang>-en.<split>.<lang>``, ``.en`` and (``dev``)
    ``.gold``; the test split has no gold file in XTREME's download (``gold None``)."""
    directory = Path(directory)
    looked = []
    for (src, trg), gold in _bucc_candidates(lang, split, trg_lang):
        if (directory / src).is_file() and (directory / trg).is_file():
            gold_path = directory / gold
            return read_bucc_files(directory / src, directory / trg,
                                   gold_path if gold_path.is_file() else None)
        looked += [src, trg]
    raise AdapterxlError(f"no BUCC {split} files for {lang} under {directory} (looked for "
                         f"{', '.join(looked)})")


# --------------------------------------------------------------------------- discovery


def _canonical_split(split: str) -> str:
    for name, aliases in SPLIT_ALIASES.items():
        if split in aliases:
            return name
    raise AdapterxlError(f"unknown split {split!r}; known: {', '.join(SPLITS)} (or dev)")


def _simple_kind(fmt, ext: str) -> str:
    if fmt == "retrieval":
        return {"jsonl": "retrieval_jsonl", "tsv": "parallel_tsv"}.get(ext, ext)
    if fmt == "tagging" and ext in ("tsv", "txt"):
        return "conll"
    if ext == "json":
        return "squad_json"
    return ext


def _simple_candidates(task, split: str, lang: str):
    """(file name, reader kind) in adapterxl's layout, in order of preference."""
    fmt = getattr(task, "format", None)
    exts = EXTENSIONS.get(fmt, ALL_EXTENSIONS)
    stems = [f"{s}.{lang}" for s in SPLIT_ALIASES[split]]
    languages = tuple(getattr(task, "languages", ()) or ())
    if lang == getattr(task, "train_language", "en") or len(languages) == 1:
        stems += list(SPLIT_ALIASES[split])
    return [(f"{stem}.{ext}", _simple_kind(fmt, ext)) for stem in stems for ext in exts]


def _xtreme_candidates(task, split: str, lang: str):
    """What XTREME's download script writes, as (reader kind, required paths, optional paths)
    relative to ``download/`` (the first component is the task's folder): the task's
    `xtreme_files` in the catalogue (tasks/catalog.yaml)."""
    return xtreme_candidates(getattr(task, "xtreme_files", ()) or (),
                             getattr(task, "hub_lang", None) or {}, split, lang)


def _xtreme_bases(root: Path, rel: str):
    """``root`` is XTREME's download/ folder, or the task's folder inside it."""
    parts = Path(rel).parts
    yield root / rel
    if len(parts) > 1:
        yield root.joinpath(*parts[1:])


def _check_root(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise AdapterxlError(f"data directory {str(root)!r} does not exist")
    return root


def local_files(task, root, split: str, lang: str):
    """``(reader kind, [paths])`` of the local data for one split and language, or None.
    adapterxl's layout is tried first, then XTREME's download layout."""
    root = _check_root(root)
    split = _canonical_split(split)
    for name, kind in _simple_candidates(task, split, lang):
        if (root / name).is_file():
            return kind, [root / name]
    for kind, required, optional in _xtreme_candidates(task, split, lang):
        for variant in zip(*[list(_xtreme_bases(root, rel)) for rel in required + optional]):
            paths = list(variant)
            need = paths[:len(required)]
            if all(p.is_file() for p in need):
                return kind, need + [p for p in paths[len(required):] if p.is_file()]
    return None


def _looked_for(task, split: str, lang: str) -> str:
    simple = [name for name, _ in _simple_candidates(task, split, lang)]
    xtreme = [" + ".join(required) for _, required, _ in _xtreme_candidates(task, split, lang)]
    text = ", ".join(simple)
    if xtreme:
        return f"{text}, XTREME layout {' or '.join(xtreme)}"
    return f"{text}; XTREME's download layout has no {split} data for {_task_name(task)}"


def read_local(task, kind: str, paths, lang: str):
    """Read files found by ``local_files`` -> rows, or a corpus for retrieval tasks."""
    paths = [Path(p) for p in paths]
    if kind == "jsonl":
        return read_jsonl(task, paths[0])
    if kind == "tsv":
        return read_tsv(task, paths[0])
    if kind == "csv":
        return read_tsv(task, paths[0], delimiter=",")
    if kind == "tsv_headerless":  # XTREME's xnli/pawsx files, read as XTREME reads them
        return read_tsv(task, paths[0], header=False, unquote=False)
    if kind == "squad_json":
        return read_squad_json(paths[0])
    if kind == "conllu":
        return read_conllu(paths[0], task=task, lang=lang)
    if kind == "conll":
        return read_conll_columns(paths[0], task=task)
    if kind == "txt":
        return read_text_lines(paths[0])
    if kind == "retrieval_jsonl":
        return read_retrieval_jsonl(paths[0])
    if kind == "parallel_tsv":
        return read_parallel_tsv(paths[0], lang)
    if kind == "bucc":
        return read_bucc_files(*paths)
    if kind == "tatoeba_aligned":
        return read_tatoeba(paths[0], paths[1], lang)
    if kind == "tatoeba_hidden":
        return read_tatoeba(paths[0], paths[1], lang, gold=None)
    raise AdapterxlError(f"cannot read {paths[0]}: unknown reader {kind!r}")


def load_local(task, root, split: str, lang: str):
    """Canonical rows (a corpus for retrieval) of one split and language from local files."""
    root = _check_root(root)
    canonical = _canonical_split(split)
    found = local_files(task, root, canonical, lang)
    if found is None:
        raise AdapterxlError(f"no {canonical} data for {_task_name(task)} in {lang} under {root} "
                             f"(looked for {_looked_for(task, canonical, lang)})")
    kind, paths = found
    rows = read_local(task, kind, paths, lang)
    if canonical == "test" and _zeroed_labels(task, rows):
        rows = [dict(r, label=None) for r in rows]
    return rows


def _zeroed_labels(task, rows) -> bool:
    """XTREME's preprocessing hides the XCOPA test labels by setting every one to 0 (its
    ``xcopa_preprocess``). A multiple-choice test file whose labels are all 0 (over at least
    20 rows; by chance that is under one in a million with two choices) is such a file: its
    labels are treated as absent, not scored against."""
    if getattr(task, "format", None) != "multiple_choice" or len(rows) < 20:
        return False
    return all(r.get("label") == 0 for r in rows)


def local_languages(task, root, split: str) -> list[str]:
    """The task's languages that have local data for this split, in the task's order."""
    root = _check_root(root)
    split = _canonical_split(split)
    return [lang for lang in getattr(task, "languages", ()) or ()
            if local_files(task, root, split, lang) is not None]
