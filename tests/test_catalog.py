"""The task catalogue (every task, suites with the benchmarks' language lists), the record
converter (Hub-shaped and canonical records -> canonical rows) and the Hub loader with
datasets.load_dataset replaced by in-memory datasets (no network)."""
import copy

import datasets
import pytest
import yaml

from adapterxl.data.convert import convert, convert_corpus
from adapterxl.data.download import hub_spec, load_hub
from adapterxl.errors import AdapterxlError
from adapterxl.tasks import (CATALOG, SUITES, catalog, describe_tasks, get_task, guard_warning,
                             list_tasks, parse_catalog, suite_tasks)

INTERMEDIATE = ["anli_plus", "mnli", "qqp", "squad", "squad_v2", "hellaswag", "cosmosqa",
                "commonsenseqa", "ccg", "stsb", "stsb_multi", "sickr", "siqa", "copa", "paws"]
XTREME = ["xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa", "bucc2018", "tatoeba"]
XTREME_R = ["xnli", "xcopa", "udpos", "panx", "xquad", "mlqa", "tydiqa", "tatoeba", "mewslix",
            "lareqa"]
XTREME_COUNTS = {"xnli": 15, "pawsx": 7, "udpos": 33, "panx": 40, "xquad": 11, "mlqa": 7,
                 "tydiqa": 9, "bucc2018": 4, "tatoeba": 36}
XTREME_R_COUNTS = {"xnli": 15, "xcopa": 11, "udpos": 38, "panx": 48, "xquad": 12, "mlqa": 7,
                   "tydiqa": 9, "tatoeba": 41, "mewslix": 11, "lareqa": 11}


def entries():
    return yaml.safe_load(CATALOG.read_text(encoding="utf-8"))


# --- the catalogue -----------------------------------------------------------------------------

def test_every_task_is_catalogued_with_what_its_format_needs():
    tasks = catalog()
    assert sorted(tasks) == sorted(set(INTERMEDIATE) | set(XTREME) | set(XTREME_R))
    assert [t.name for t in list_tasks("intermediate")] == [n for n in tasks if n in INTERMEDIATE]
    for t in tasks.values():
        assert t.description and t.metric and t.hyperparameters, t.name
        if t.format in ("classification", "pair_classification"):
            assert t.labels and len(set(t.labels)) == len(t.labels), t.name
        if t.format == "multiple_choice":
            assert t.num_choices >= 2, t.name
        if t.format in ("regression", "qa", "multiple_choice", "retrieval"):
            assert t.labels == (), t.name
        if t.local_only is None:
            assert t.sources, t.name
        if t.role == "intermediate":
            assert t.train_language == "en" and not t.suites
            assert t.local_only or "train" in t.sources, t.name
        else:
            assert t.suites, t.name
        if t.format == "retrieval":
            assert t.hyperparameters == {"max_length": 512, "layer": None}
        if t.format == "qa":
            assert t.hyperparameters["max_length"] == 384
            assert t.hyperparameters["doc_stride"] == 128
    assert get_task("ccg").labels is None and "LDC2005T13" in get_task("ccg").local_only
    assert get_task("udpos").labels[:3] == ("ADJ", "ADP", "ADV") and len(get_task("udpos").labels) == 17
    assert get_task("panx").labels == ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
    assert get_task("hellaswag").num_choices == 4 and get_task("commonsenseqa").num_choices == 5
    assert get_task("siqa").num_choices == 3 and get_task("copa").num_choices == 2
    # Hyperparameters of the paper.
    epochs = {n: get_task(n).hyperparameters.get("epochs") for n in XTREME}
    assert epochs == {"xnli": 2, "pawsx": 5, "udpos": 10, "panx": 10, "xquad": 2, "mlqa": 2,
                      "tydiqa": 2, "bucc2018": None, "tatoeba": None}
    assert {get_task(n).hyperparameters["epochs"] for n in INTERMEDIATE} == {3}
    assert get_task("xquad").hyperparameters["batch_size"] == 16
    assert "lr" not in get_task("xnli").hyperparameters


def test_metrics_and_english_training_data():
    metric = {n: get_task(n).metric for n in XTREME + ["xcopa", "mewslix", "lareqa"]}
    assert metric == {"xnli": "accuracy", "pawsx": "accuracy", "udpos": "tagging_f1",
                      "panx": "tagging_f1", "xquad": "squad", "mlqa": "mlqa", "tydiqa": "squad",
                      "bucc2018": "bucc_f1", "tatoeba": "accuracy", "xcopa": "accuracy",
                      "mewslix": "map@20", "lareqa": "map@20"}
    etd = {n: get_task(n).english_training_data for n in XTREME + ["xcopa"]}
    assert etd == {"xnli": "mnli", "pawsx": "pawsx", "udpos": "udpos", "panx": "panx",
                   "xquad": "squad", "mlqa": "squad", "tydiqa": "tydiqa", "bucc2018": None,
                   "tatoeba": None, "xcopa": "copa"}
    assert get_task("squad_v2").metric == "squad_v2"
    assert get_task("stsb").metric == get_task("sickr").metric == "pearson_spearman"


def test_suites_have_the_benchmarks_tasks_and_languages():
    assert SUITES == ("xtreme", "xtreme-r")
    assert [t.name for t in suite_tasks("xtreme")] == XTREME
    assert [t.name for t in suite_tasks("xtreme-r")] == XTREME_R
    assert {t.name: len(t.suites["xtreme"]) for t in suite_tasks("xtreme")} == XTREME_COUNTS
    assert {t.name: len(t.suites["xtreme-r"]) for t in suite_tasks("xtreme-r")} == XTREME_R_COUNTS
    xtreme = {x for t in suite_tasks("xtreme") for x in t.suites["xtreme"]}
    xtreme_r = {x for t in suite_tasks("xtreme-r") for x in t.suites["xtreme-r"]}
    assert len(xtreme) == 40 and len(xtreme_r) == 50
    assert xtreme_r - xtreme == {"az", "gu", "ht", "lt", "pa", "pl", "qu", "ro", "uk", "wo"}

    def added(name):
        t = get_task(name)
        return set(t.suites["xtreme-r"]) - set(t.suites["xtreme"])

    assert added("udpos") == {"lt", "pl", "uk", "wo", "ro"}
    assert added("panx") == {"qu", "pl", "uk", "az", "lt", "pa", "gu", "ro"}
    assert added("tatoeba") == {"az", "lt", "pl", "uk", "ro"}
    assert added("xquad") == {"ro"}
    for name in ("xnli", "mlqa", "tydiqa"):
        t = get_task(name)
        assert t.suites["xtreme"] == t.suites["xtreme-r"]
    assert set(get_task("xcopa").suites["xtreme-r"]) == set(
        "et ht id it qu sw ta th tr vi zh".split())
    assert "en" not in get_task("tatoeba").languages
    for t in catalog().values():  # languages = the union of the suites (+ xcopa's English)
        if t.suites:
            union = {x for langs in t.suites.values() for x in langs}
            assert set(t.languages) == union | ({"en"} if t.name == "xcopa" else set())
    assert [t.name for t in list_tasks(suite="xtreme-r", role="target")] == XTREME_R


def test_describe_tasks_is_json_ready():
    import json

    rows = describe_tasks(suite="xtreme")
    assert [r["name"] for r in rows] == XTREME
    assert len(rows[2]["languages"]) == 33 and rows[2]["suites"] == {"xtreme": 33,
                                                                    "xtreme-r": 38}
    json.dumps(describe_tasks())
    by_name = {r["name"]: r for r in describe_tasks(role="intermediate")}
    assert by_name["anli_plus"]["source"] == "facebook/anli + nyu-mll/glue + stanfordnlp/snli"
    assert by_name["ccg"]["source"] == "local files only"


def test_resolve_languages_with_a_suite():
    udpos = get_task("udpos")
    assert len(udpos.resolve_languages("all")) == 38
    assert len(udpos.resolve_languages("all", suite="xtreme")) == 33
    assert udpos.resolve_languages("de,wo", suite="xtreme-r") == ["de", "wo"]
    with pytest.raises(AdapterxlError, match="unknown language for udpos in xtreme 'wo'"):
        udpos.resolve_languages("de,wo", suite="xtreme")
    with pytest.raises(AdapterxlError, match="pawsx is not a task of xtreme-r"):
        get_task("pawsx").resolve_languages("all", suite="xtreme-r")
    with pytest.raises(AdapterxlError, match="unknown suite 'xtrem'"):
        suite_tasks("xtrem")


def test_hub_lang_maps_config_names():
    assert get_task("udpos").hub_lang["de"] == "German"
    assert get_task("tatoeba").hub_lang["zh"] == "cmn" and get_task("tatoeba").hub_lang["fa"] == "pes"
    assert len(get_task("tatoeba").hub_lang) == 41
    spec = hub_spec(get_task("udpos"), "test", "de")
    assert spec["sources"] == [{"path": "google/xtreme", "name": "udpos.German", "split": "test"}]
    assert hub_spec(get_task("tatoeba"), "test", "de")["sources"][0]["name"] == "tatoeba.deu"
    assert hub_spec(get_task("mlqa"), "test", "de")["sources"][0]["name"] == "MLQA.de.de"
    assert hub_spec(get_task("tydiqa"), "test", "sw")["sources"][0]["filter"] == {
        "column": "id", "prefix": "swahili-"}
    xcopa = hub_spec(get_task("xcopa"), "validation", "en")["sources"]
    assert xcopa == [{"path": "aps/super_glue", "name": "copa", "split": "validation"}]
    assert len(hub_spec(get_task("anli_plus"), "train", "en")["sources"]) == 5


def test_guard_warning():
    line = guard_warning("mnli", "xnli")
    assert line and "mnli" in line and "xnli" in line and "\n" not in line
    assert guard_warning("qqp", "xnli") is None
    assert "contains mnli" in guard_warning("anli_plus", "xnli")
    assert guard_warning("squad", "xquad") and guard_warning("squad", "mlqa")
    assert guard_warning("copa", "xcopa")
    assert guard_warning("siqa", "xcopa") is None
    assert guard_warning("squad", "tydiqa") is None
    assert guard_warning("mnli", "tatoeba") is None


@pytest.mark.parametrize("edit, message", [
    (lambda e: e["mnli"].update(colour="red"), "task 'mnli': unknown key 'colour'"),
    (lambda e: e["mnli"].update(metric="f2"), "task 'mnli': unknown metric 'f2'"),
    (lambda e: e["mnli"].update(format="tabular"), "task 'mnli': unknown format 'tabular'"),
    (lambda e: e["qqp"].pop("labels"), "task 'qqp': the pair_classification format needs labels"),
    (lambda e: e["hellaswag"].pop("num_choices"), "task 'hellaswag': the multiple_choice format "
                                                  "needs num_choices"),
    (lambda e: e["udpos"]["suites"]["xtreme"].append("xx"),
     "task 'udpos': suites.xtreme has xx, not in languages"),
    (lambda e: e["mnli"]["sources"]["train"].pop("path"),
     "task 'mnli': sources.train: every source needs a 'path'"),
    (lambda e: e["xnli"]["sources"]["test"].update(name="{language}"),
     "task 'xnli': sources.test: unknown placeholder {language}"),
    (lambda e: e["copa"].update(converter="cope"), "task 'copa': converter: unknown converter"),
    (lambda e: e["xnli"].pop("suites"), "suite 'xtreme' must be exactly"),
    (lambda e: e["mnli"].update(fields={"text": ["premise"]}),
     "task 'mnli': fields.text needs 2 column"),
    (lambda e: e["xnli"]["xtreme_files"][0].update(kind="parquet"),
     "task 'xnli': xtreme_files.0.: unknown kind 'parquet'"),
    (lambda e: e["xnli"]["xtreme_files"][0].update(files=["xnli/{xsplit}-{lang}.tsv"]),
     "task 'xnli': xtreme_files.0.: unknown placeholder {xsplit}"),
    (lambda e: e["mlqa"]["xtreme_files"][0].update(splits=["dev"]),
     "task 'mlqa': xtreme_files.0..splits: unknown split 'dev'"),
    (lambda e: e["udpos"]["xtreme_files"][0].update(languages=["xx"]),
     "task 'udpos': xtreme_files.0..languages has xx, not in languages"),
])
def test_a_bad_catalogue_is_refused_with_one_line(edit, message):
    bad = copy.deepcopy(entries())
    edit(bad)
    with pytest.raises(AdapterxlError, match=message.replace("{", r"\{").replace("}", r"\}")) as e:
        parse_catalog(bad)
    assert "\n" not in str(e.value)


def test_the_vocabularies_agree_with_their_implementations(tmp_path):
    """The catalogue names converters and reader kinds without importing data/ (the floor
    above it); each name has its implementation there."""
    from adapterxl.data.convert import CONVERTERS
    from adapterxl.data.readers import read_local
    from adapterxl.tasks import CONVERTER_NAMES, READER_KINDS

    assert sorted(CONVERTERS) == sorted(CONVERTER_NAMES)
    for kind in READER_KINDS:   # a missing file, never an unknown reader
        with pytest.raises((OSError, AdapterxlError)) as e:
            read_local(get_task("xnli"), kind, [tmp_path / "absent", tmp_path / "absent2"], "de")
        assert "unknown reader" not in str(e.value)
    with pytest.raises(AdapterxlError, match="unknown reader 'parquet'"):
        read_local(get_task("xnli"), "parquet", [tmp_path / "absent"], "de")


def test_xtreme_file_layout_is_catalogue_data():
    """XTREME's download layout per task: {split} is XTREME's name for the split, {hub_lang}
    the task's hub_lang entry; a candidate serves only its splits."""
    assert get_task("mlqa").xtreme_files and not get_task("mewslix").xtreme_files
    from adapterxl.tasks import xtreme_candidates

    mlqa = get_task("mlqa")
    assert xtreme_candidates(mlqa.xtreme_files, mlqa.hub_lang, "validation", "de") == [
        ("squad_json", ["mlqa/MLQA_V1/dev/dev-context-de-question-de.json"], [])]
    assert xtreme_candidates(mlqa.xtreme_files, mlqa.hub_lang, "train", "de") == []
    tydiqa = get_task("tydiqa")
    found = xtreme_candidates(tydiqa.xtreme_files, tydiqa.hub_lang, "test", "fi")
    assert [paths for _, paths, _ in found] == [
        ["tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.fi.dev.json"],
        ["tydiqa/tydiqa-goldp-v1.1-dev/tydiqa-goldp-dev-finnish.json"]]
    bucc = get_task("bucc2018")
    kind, required, optional = xtreme_candidates(bucc.xtreme_files, {}, "test", "fr")[0]
    assert (kind, required, optional) == (
        "bucc", ["bucc2018/fr-en.test.fr", "bucc2018/fr-en.test.en"], ["bucc2018/fr-en.test.gold"])


# --- convert: records shaped like each Hub dataset's rows --------------------------------------

def test_convert_classification_and_regression_rows():
    xnli, mnli, pawsx = get_task("xnli"), get_task("mnli"), get_task("pawsx")
    assert convert(mnli, {"premise": "P", "hypothesis": "H", "label": 2, "idx": 7}, "w") == \
        {"text": ("P", "H"), "label": 2}
    assert convert(mnli, {"premise": "P", "hypothesis": "H", "label": -1, "idx": 7}, "w")["label"] is None
    assert convert(xnli, {"premise": "P", "hypothesis": "H", "label": "neutral"}, "w")["label"] == 1
    # google-research-datasets/paws-x: ClassLabel ints; XTREME's files: label strings "0"/"1".
    assert convert(pawsx, {"id": 3, "sentence1": "A", "sentence2": "B", "label": 1}, "w") == \
        {"text": ("A", "B"), "label": 1}
    assert convert(pawsx, {"sentence1": "A", "sentence2": "B", "label": "0"}, "w")["label"] == 0
    assert convert(get_task("qqp"), {"question1": "q1", "question2": "q2", "label": 1,
                                     "idx": 0}, "w") == {"text": ("q1", "q2"), "label": 1}
    # canonical keys (bundled samples) go through the same path
    assert convert(xnli, {"text": ["P", "H"], "label": "contradiction"}, "w") == \
        {"text": ("P", "H"), "label": 2}
    assert convert(get_task("stsb"), {"sentence1": "a", "sentence2": "b", "label": 3.8,
                                      "idx": 1}, "w") == {"text": ("a", "b"), "label": 3.8}
    assert convert(get_task("stsb"), {"sentence1": "a", "sentence2": "b", "label": -1.0,
                                      "idx": 1}, "w")["label"] is None
    assert convert(get_task("stsb_multi"), {"sentence1": "a", "sentence2": "b",
                                            "similarity_score": 2.5}, "w")["label"] == 2.5
    sick = {"id": "1", "sentence_A": "a", "sentence_B": "b", "label": 0,
            "relatedness_score": 4.5, "entailment_AB": "A_neutral_B"}
    assert convert(get_task("sickr"), sick, "w") == {"text": ("a", "b"), "label": 4.5}


def test_convert_tagging_rows():
    udpos, panx, ccg = get_task("udpos"), get_task("panx"), get_task("ccg")
    assert convert(udpos, {"tokens": ["Der", "Hund"], "pos_tags": [5, 7]}, "w") == \
        {"tokens": ["Der", "Hund"], "tags": [5, 7]}
    assert convert(panx, {"tokens": ["Paris"], "ner_tags": [5], "langs": ["fr"]}, "w") == \
        {"tokens": ["Paris"], "tags": [5]}
    assert convert(panx, {"tokens": ["Paris", "!"], "tags": ["B-LOC", "O"]}, "w")["tags"] == [5, 0]
    assert convert(panx, {"tokens": ["Paris"]}, "w")["tags"] is None  # hidden test tags
    assert convert(ccg, {"tokens": ["I", "run"], "tags": ["NP", r"S\NP"]}, "w")["tags"] == \
        ["NP", r"S\NP"]
    with pytest.raises(AdapterxlError, match="w: 2 words but 1 tags"):
        convert(panx, {"tokens": ["a", "b"], "ner_tags": [0]}, "w")
    with pytest.raises(AdapterxlError, match="w: label 'B-FOO' is not in the label set of panx"):
        convert(panx, {"tokens": ["a"], "tags": ["B-FOO"]}, "w")


def test_convert_qa_rows():
    squad, squad_v2 = get_task("squad"), get_task("squad_v2")
    row = {"id": "5733be284776f41900661182", "title": "Notre_Dame", "context": "In 1858 it was.",
           "question": "When?", "answers": {"text": ["1858", "1858"], "answer_start": [3, 3]}}
    assert convert(squad, row, "w") == {
        "id": "5733be284776f41900661182", "question": "When?", "context": "In 1858 it was.",
        "answers": [{"text": "1858", "start": 3}, {"text": "1858", "start": 3}]}
    empty = dict(row, answers={"text": [], "answer_start": []})
    assert convert(squad_v2, empty, "w")["answers"] == []
    tydi = {"id": "swahili-123-0", "title": "t", "context": "Nairobi ni mji.",
            "question": "Mji gani?", "answers": {"answer_start": [0], "text": ["Nairobi"]}}
    assert convert(get_task("tydiqa"), tydi, "w")["answers"] == [{"text": "Nairobi", "start": 0}]
    canonical = {"id": "q1", "question": "When?", "context": "In 1858 it was.",
                 "answers": [{"text": "1858", "start": 3}]}
    assert convert(get_task("xquad"), canonical, "w") == canonical
    assert convert(get_task("xquad"), dict(canonical, answers=None), "w")["answers"] is None


def test_convert_multiple_choice_rows():
    hs = {"ind": 4, "activity_label": "Removing ice", "ctx_a": "A man is", "ctx_b": "then",
          "ctx": "A man is then", "endings": ["a", "b", "c", "d"], "source_id": "x",
          "split": "train", "split_type": "indomain", "label": "3"}
    assert convert(get_task("hellaswag"), hs, "w") == {
        "context": "A man is then", "choices": ["a", "b", "c", "d"], "label": 3}
    assert convert(get_task("hellaswag"), dict(hs, label=""), "w")["label"] is None
    cosmos = {"id": "1", "context": "It rained.", "question": "Why wet?", "answer0": "rain",
              "answer1": "sun", "answer2": "snow", "answer3": "none", "label": 0}
    assert convert(get_task("cosmosqa"), cosmos, "w") == {
        "context": "It rained. Why wet?", "choices": ["rain", "sun", "snow", "none"], "label": 0}
    csqa = {"id": "x", "question": "Where?", "question_concept": "c",
            "choices": {"label": ["A", "B", "C", "D", "E"], "text": ["a", "b", "c", "d", "e"]},
            "answerKey": "C"}
    assert convert(get_task("commonsenseqa"), csqa, "w") == {
        "context": "Where?", "choices": ["a", "b", "c", "d", "e"], "label": 2}
    assert convert(get_task("commonsenseqa"), dict(csqa, answerKey=""), "w")["label"] is None
    siqa = {"context": "Tracy ran.", "question": "Why?", "answerA": "a", "answerB": "b",
            "answerC": "c", "label": "2"}
    assert convert(get_task("siqa"), siqa, "w") == {
        "context": "Tracy ran. Why?", "choices": ["a", "b", "c"], "label": 1}
    copa = {"premise": "The man broke his toe.", "choice1": "He dropped a hammer.",
            "choice2": "He ran.", "question": "cause", "idx": 0, "label": 0}
    assert convert(get_task("copa"), copa, "w") == {
        "context": "The man broke his toe. What was the cause?",
        "choices": ["He dropped a hammer.", "He ran."], "label": 0}
    xcopa = {"premise": "Mees lõi varba.", "choice1": "a", "choice2": "b", "question": "effect",
             "label": 1, "idx": 1, "changed": False}
    assert convert(get_task("xcopa"), xcopa, "w")["context"] == \
        "Mees lõi varba. What happened as a result?"
    canonical = {"context": "c", "choices": ["x", "y"], "label": "y"}  # label as the choice
    assert convert(get_task("xcopa"), canonical, "w")["label"] == 1


def test_bad_labels_and_missing_columns_are_one_line_errors():
    mnli = get_task("mnli")
    with pytest.raises(AdapterxlError, match=r"^train.tsv:3: label 'maybe' is not in the label "
                                             r"set of mnli \(entailment, neutral, contradiction"):
        convert(mnli, {"premise": "a", "hypothesis": "b", "label": "maybe"}, "train.tsv:3")
    with pytest.raises(AdapterxlError, match="label 7 is not in the label set of mnli"):
        convert(mnli, {"premise": "a", "hypothesis": "b", "label": 7}, "w")
    with pytest.raises(AdapterxlError, match=r"^f.jsonl:1: missing column 'hypothesis' \(expected "
                                             r"premise, hypothesis, label\)"):
        convert(mnli, {"premise": "a", "label": 0}, "f.jsonl:1")
    with pytest.raises(AdapterxlError, match=r"^w: missing column 'endings'"):
        convert(get_task("hellaswag"), {"ctx": "c", "label": "0"}, "w")
    with pytest.raises(AdapterxlError, match="missing column 'pos_tags'|missing column 'tokens'"):
        convert(get_task("udpos"), {"words": ["a"]}, "w")
    with pytest.raises(AdapterxlError, match="label '4' is not in the label set of siqa"):
        convert(get_task("siqa"), {"context": "c", "question": "q", "answerA": "a",
                                   "answerB": "b", "answerC": "c", "label": "4"}, "w")
    with pytest.raises(AdapterxlError, match="label 'high' is not a number"):
        convert(get_task("stsb"), {"sentence1": "a", "sentence2": "b", "label": "high"}, "w")
    with pytest.raises(AdapterxlError, match="answer .* needs a text and a character offset"):
        convert(get_task("squad"), {"id": "1", "question": "q", "context": "c",
                                    "answers": [{"text": "c"}]}, "w")


def test_convert_corpus_from_pairs_and_from_sample_items():
    tatoeba = get_task("tatoeba")
    rows = [{"source_sentence": "Ich bin hier.", "target_sentence": "I am here.",
             "source_lang": "deu", "target_lang": "eng"},
            {"source_sentence": "Danke.", "target_sentence": "Thanks.", "source_lang": "deu",
             "target_lang": "eng"}]
    corpus = convert_corpus(tatoeba, rows, "w", lang="de")
    assert corpus["queries"] == [{"id": "de-000000001", "text": "Ich bin hier."},
                                 {"id": "de-000000002", "text": "Danke."}]
    assert [c["text"] for c in corpus["candidates"]] == ["I am here.", "Thanks."]
    assert corpus["gold"] == {"de-000000001": ["en-000000001"], "de-000000002": ["en-000000002"]}
    items = [{"query": "Hallo", "id": "q1", "gold": ["c2"]}, {"candidate": "x", "id": "c1"},
             {"candidate": "Hello", "id": "c2"}]
    assert convert_corpus(get_task("bucc2018"), items, "w")["gold"] == {"q1": ["c2"]}
    hidden = convert_corpus(tatoeba, [{"query": "a", "id": "q"}, {"candidate": "b", "id": "c"}], "w")
    assert hidden["gold"] is None
    with pytest.raises(AdapterxlError, match="w:1: missing column 'target_sentence'"):
        convert_corpus(tatoeba, [{"source_sentence": "a"}], "w")
    with pytest.raises(AdapterxlError, match="names unknown candidate"):
        convert_corpus(tatoeba, [{"query": "a", "id": "q", "gold": ["zz"]}], "w")


# --- load_hub with an in-memory Hub ------------------------------------------------------------

@pytest.fixture
def hub(monkeypatch):
    """Replace datasets.load_dataset by a table of in-memory datasets; records the calls."""
    table, calls = {}, []

    def load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        if (path, name, split) not in table:
            raise ConnectionError(f"Couldn't reach '{path}' on the Hub (OfflineModeIsEnabled)")
        return table[(path, name, split)]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return table, calls


NLI = datasets.Features({"premise": datasets.Value("string"),
                         "hypothesis": datasets.Value("string"),
                         "label": datasets.ClassLabel(names=["entailment", "neutral",
                                                             "contradiction"])})


def test_load_hub_classification(hub):
    table, calls = hub
    table[("facebook/xnli", "de", "test")] = datasets.Dataset.from_list(
        [{"premise": "P1", "hypothesis": "H1", "label": 2},
         {"premise": "P2", "hypothesis": "H2", "label": 0}], features=NLI)
    rows = load_hub(get_task("xnli"), "test", "de")
    assert rows == [{"text": ("P1", "H1"), "label": 2}, {"text": ("P2", "H2"), "label": 0}]
    assert calls == [("facebook/xnli", "de", "test")]


def test_load_hub_tagging_checks_the_label_names(hub):
    table, _ = hub
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    features = datasets.Features({
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        "langs": datasets.Sequence(datasets.Value("string"))})
    table[("google/xtreme", "PAN-X.sw", "test")] = datasets.Dataset.from_list(
        [{"tokens": ["Nairobi", "ni"], "ner_tags": [5, 0], "langs": ["sw", "sw"]}],
        features=features)
    assert load_hub(get_task("panx"), "test", "sw") == [{"tokens": ["Nairobi", "ni"],
                                                         "tags": [5, 0]}]
    swapped = datasets.Features({**features, "ner_tags": datasets.Sequence(
        datasets.ClassLabel(names=names[::-1]))})
    table[("google/xtreme", "PAN-X.sw", "test")] = datasets.Dataset.from_list(
        [{"tokens": ["a"], "ner_tags": [0], "langs": ["sw"]}], features=swapped)
    with pytest.raises(AdapterxlError, match="label names .* differ from panx's labels"):
        load_hub(get_task("panx"), "test", "sw")


def test_load_hub_qa_with_a_language_filter(hub):
    table, calls = hub
    table[("google/xtreme", "tydiqa", "validation")] = datasets.Dataset.from_list([
        {"id": "swahili-1-0", "title": "t", "context": "Nairobi ni mji.", "question": "Nini?",
         "answers": {"answer_start": [0], "text": ["Nairobi"]}},
        {"id": "finnish-2-0", "title": "t", "context": "Helsinki on.", "question": "Mikä?",
         "answers": {"answer_start": [0], "text": ["Helsinki"]}}])
    rows = load_hub(get_task("tydiqa"), "test", "sw")
    assert rows == [{"id": "swahili-1-0", "question": "Nini?", "context": "Nairobi ni mji.",
                     "answers": [{"text": "Nairobi", "start": 0}]}]
    table[("rajpurkar/squad", None, "train")] = datasets.Dataset.from_list([
        {"id": "a1", "title": "t", "context": "In 1858.", "question": "When?",
         "answers": {"text": ["1858"], "answer_start": [3]}}])
    assert load_hub(get_task("xquad"), "train", "en")[0]["answers"] == [{"text": "1858",
                                                                         "start": 3}]


def test_load_hub_concatenates_anli_plus_and_drops_unlabeled_snli(hub):
    table, calls = hub
    for r in (1, 2, 3):
        table[("facebook/anli", None, f"train_r{r}")] = datasets.Dataset.from_list(
            [{"uid": f"u{r}", "premise": f"A{r}", "hypothesis": "h", "label": r - 1,
              "reason": ""}])
    table[("nyu-mll/glue", "mnli", "train")] = datasets.Dataset.from_list(
        [{"premise": "M", "hypothesis": "h", "label": 1, "idx": 0}])
    table[("stanfordnlp/snli", None, "train")] = datasets.Dataset.from_list(
        [{"premise": "S1", "hypothesis": "h", "label": 0},
         {"premise": "S2", "hypothesis": "h", "label": -1}])
    rows = load_hub(get_task("anli_plus"), "train", "en")
    assert [r["text"][0] for r in rows] == ["A1", "A2", "A3", "M", "S1"]
    assert [r["label"] for r in rows] == [0, 1, 2, 1, 0]
    assert len(calls) == 5


def test_load_hub_retrieval_corpus(hub):
    table, _ = hub
    table[("google/xtreme", "tatoeba.deu", "validation")] = datasets.Dataset.from_list(
        [{"source_sentence": "Hallo.", "target_sentence": "Hello.", "source_lang": "deu",
          "target_lang": "eng"}])
    corpus = load_hub(get_task("tatoeba"), "test", "de")
    assert corpus["gold"] == {"de-000000001": ["en-000000001"]}


def test_load_hub_errors(hub):
    with pytest.raises(AdapterxlError, match=r"cannot fetch dataset nyu-mll/glue \(mnli\) train: "
                                             r"not cached and the Hugging Face Hub is "
                                             r"unreachable \(ConnectionError\); to run offline "
                                             r"use --data samples"):
        load_hub(get_task("mnli"), "train", "en")
    with pytest.raises(AdapterxlError, match="ccg is not on the Hugging Face Hub: CCGbank "
                                             r"\(LDC2005T13\) is licensed.*--data-dir"):
        load_hub(get_task("ccg"), "train", "en")
    with pytest.raises(AdapterxlError, match="udpos has no test data in wo on the Hugging Face "
                                             "Hub .*--data-dir"):
        load_hub(get_task("udpos"), "test", "wo")
    with pytest.raises(AdapterxlError, match="tatoeba has no train split on the Hugging Face Hub"):
        load_hub(get_task("tatoeba"), "train", "de")
    with pytest.raises(AdapterxlError, match="unknown language for xnli 'xx'"):
        load_hub(get_task("xnli"), "test", "xx")
