"""Local files in their original formats (SQuAD JSON, CoNLL-U, token/tag columns, XTREME's
TSVs, BUCC, Tatoeba, retrieval JSONL) and the discovery of adapterxl's and XTREME's layouts.
Tasks are stand-ins (SimpleNamespace) with the catalogue's XTREME file layout (`xtreme_files`,
`hub_lang`) where the catalogue has the task, so the rest does not depend on the catalogue."""
import csv
import json
import sys
import types
from types import SimpleNamespace

import pytest

from adapterxl.data.readers import (
    load_local, local_files, local_languages, read_bucc, read_conll_columns, read_conllu,
    read_retrieval_jsonl, read_squad_json, read_tatoeba, read_tsv, read_text_lines,
)
from adapterxl.errors import AdapterxlError
from adapterxl.tasks import catalog

UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
        "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")
NER = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
NLI = ("entailment", "neutral", "contradiction")


def task(name, fmt, labels=None, languages=("en", "de"), train_language="en", **extra):
    known = catalog().get(name)
    layout = {"xtreme_files": known.xtreme_files, "hub_lang": known.hub_lang} if known else {}
    return SimpleNamespace(name=name, format=fmt, labels=tuple(labels) if labels else None,
                           languages=tuple(languages), train_language=train_language,
                           **layout, **extra)


XNLI = task("xnli", "pair_classification", NLI, ("en", "de", "zh", "ar"))
PAWSX = task("pawsx", "pair_classification", ("not_paraphrase", "paraphrase"), ("en", "de", "ja"))
UDPOS = task("udpos", "tagging", UPOS, ("en", "de", "ja"))
PANX = task("panx", "tagging", NER, ("en", "de", "zh"))
SQUAD = task("squad", "qa", None, ("en",))
MLQA = task("mlqa", "qa", None, ("en", "de", "zh"))
TYDIQA = task("tydiqa", "qa", None, ("en", "ar", "fi"))
XQUAD = task("xquad", "qa", None, ("en", "de", "zh"))
BUCC = task("bucc2018", "retrieval", None, ("de", "fr", "ru", "zh"))
TATOEBA = task("tatoeba", "retrieval", None, ("de", "ja", "ar"))
STS = task("stsb_multi", "regression", None, ("en", "de"))


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def squad(paragraphs, version="1.1"):
    return json.dumps({"version": version, "data": [{"title": "T", "paragraphs": paragraphs}]},
                      ensure_ascii=False)


# --------------------------------------------------------------------------- SQuAD JSON

CONTEXT_DE = ("Der Zürichsee liegt südöstlich von Zürich. "
              "Er ist 42 km lang und bis zu 136 m tief.")
CONTEXT_ZH = "长江是亚洲最长的河流，全长约6300公里。"


def test_squad_v1_rows_with_multibyte_offsets(tmp_path):
    start_de = CONTEXT_DE.index("42 km")
    start_zh = CONTEXT_ZH.index("6300公里")
    path = write(tmp_path / "xquad.de.json", squad([
        {"context": CONTEXT_DE, "qas": [
            {"id": "q-de-1", "question": "Wie lang ist der Zürichsee?",
             "answers": [{"answer_start": start_de, "text": "42 km"},
                         {"answer_start": start_de, "text": "42 km"}]}]},
        {"context": CONTEXT_ZH, "qas": [
            {"id": 7, "question": "长江有多长？",
             "answers": [{"answer_start": start_zh, "text": "6300公里"}]}]},
    ]))
    rows = read_squad_json(path)
    assert rows == [
        {"id": "q-de-1", "question": "Wie lang ist der Zürichsee?", "context": CONTEXT_DE,
         "answers": [{"text": "42 km", "start": start_de}] * 2},
        {"id": "7", "question": "长江有多长？", "context": CONTEXT_ZH,
         "answers": [{"text": "6300公里", "start": start_zh}]},
    ]
    a = rows[1]["answers"][0]
    assert rows[1]["context"][a["start"]:a["start"] + len(a["text"])] == "6300公里"


def test_squad_v2_impossible_question_has_no_answers(tmp_path):
    path = write(tmp_path / "dev-v2.0.json", squad([{"context": CONTEXT_DE, "qas": [
        {"id": "a1", "question": "Wie tief ist er?", "is_impossible": False,
         "answers": [{"answer_start": CONTEXT_DE.index("136 m"), "text": "136 m"}]},
        {"id": "a2", "question": "Wer hat ihn gegraben?", "is_impossible": True, "answers": [],
         "plausible_answers": [{"answer_start": 4, "text": "Zürichsee"}]},
    ]}], version="v2.0"))
    rows = read_squad_json(path)
    assert rows[0]["answers"] == [{"text": "136 m", "start": CONTEXT_DE.index("136 m")}]
    assert rows[1]["answers"] == []


def test_squad_xtreme_stripped_test_answers_are_hidden(tmp_path):
    # utils_preprocess.py replaces test answers with one empty answer at offset 0
    path = write(tmp_path / "xquad.zh.json", squad([{"context": CONTEXT_ZH, "qas": [
        {"id": "z1", "question": "长江有多长？",
         "answers": [{"answer_start": 0, "text": ""}]},
        {"id": "z2", "question": "长江在哪里？"},
    ]}]))
    assert [r["answers"] for r in read_squad_json(path)] == [None, None]


def test_squad_answer_offset_mismatch_names_the_question(tmp_path):
    path = write(tmp_path / "train-v1.1.json", squad([{"context": CONTEXT_DE, "qas": [
        {"id": "5733be284776f41900661182", "question": "Wie lang?",
         "answers": [{"answer_start": CONTEXT_DE.index("42 km") + 1, "text": "42 km"}]}]}]))
    with pytest.raises(AdapterxlError, match=r"train-v1\.1\.json: question "
                                             r"5733be284776f41900661182: answer '42 km' is not "
                                             r"at character \d+ .*found '2 km "):
        read_squad_json(path)


def test_squad_json_that_is_not_squad(tmp_path):
    with pytest.raises(AdapterxlError, match=r"expected SQuAD JSON"):
        read_squad_json(write(tmp_path / "x.json", '[{"question": "?"}]'))
    with pytest.raises(AdapterxlError, match=r"x2\.json:2: not valid JSON"):
        read_squad_json(write(tmp_path / "x2.json", '{"data":\n [,]}'))


# --------------------------------------------------------------------------- CoNLL-U

CONLLU = """\
# newdoc id = de-test-1
# sent_id = 1
# text = Zum Glück regnet es.
1-2\tZum\t_\t_\t_\t_\t_\t_\t_\t_
1\tZu\tzu\tADP\tAPPR\t_\t3\tcase\t_\t_
2\tdem\tder\tDET\tART\tCase=Dat\t3\tdet\t_\t_
3\tGlück\tGlück\tNOUN\tNN\t_\t4\tobl\t_\t_
4\tregnet\tregnen\tVERB\tVVFIN\t_\t0\troot\t_\t_
5\tes\tes\tPRON\tPPER\t_\t4\texpl\t_\tSpaceAfter=No
6\t.\t.\tPUNCT\t$.\t_\t4\tpunct\t_\t_

# sent_id = 2
# text = Sie kam und ging.
1\tSie\tsie\tPRON\tPPER\t_\t2\tnsubj\t_\t_
2\tkam\tkommen\tVERB\tVVFIN\t_\t0\troot\t_\t_
3\tund\tund\tCCONJ\tKON\t_\t4\tcc\t_\t_
3.1\tkam\tkommen\tVERB\tVVFIN\t_\t_\t_\t2:root\tCopyOf=2
4\tging\tgehen\tVERB\tVVFIN\t_\t2\tconj\t_\tSpaceAfter=No
5\t.\t.\tPUNCT\t$.\t_\t2\tpunct\t_\t_
"""


def test_conllu_multiword_token_is_its_surface_form_as_in_xtreme(tmp_path):
    path = write(tmp_path / "de_gsd-ud-test.conllu", CONLLU)
    rows = read_conllu(path, task=UDPOS)
    # "Zum" = zu + dem: both hang from Glück at the same depth, so the tie goes by XTREME's
    # part-of-speech order (ADP before DET): one token, tagged ADP
    assert rows[0]["tokens"] == ["Zum", "Glück", "regnet", "es", "."]
    assert [UPOS[t] for t in rows[0]["tags"]] == ["ADP", "NOUN", "VERB", "PRON", "PUNCT"]
    # the word of the span closest to the root wins, whatever its part of speech
    nested = CONLLU.replace("2\tdem\tder\tDET\tART\tCase=Dat\t3\tdet",
                            "2\tdem\tder\tDET\tART\tCase=Dat\t4\tdet")
    rows = read_conllu(write(tmp_path / "n.conllu", nested))
    assert rows[0]["tokens"][0] == "Zum" and rows[0]["tags"][0] == "DET"


def test_conllu_split_skips_comments_multiword_tokens_and_empty_nodes(tmp_path):
    path = write(tmp_path / "de_gsd-ud-test.conllu", CONLLU)
    rows = read_conllu(path, task=UDPOS, multiword="split")
    assert rows[0]["tokens"] == ["Zu", "dem", "Glück", "regnet", "es", "."]
    assert [UPOS[t] for t in rows[0]["tags"]] == ["ADP", "DET", "NOUN", "VERB", "PRON", "PUNCT"]
    assert rows[1]["tokens"] == ["Sie", "kam", "und", "ging", "."]
    assert [UPOS[t] for t in rows[1]["tags"]] == ["PRON", "VERB", "CCONJ", "VERB", "PUNCT"]
    # without a task (or labels None) the tag strings are kept; other columns on request
    assert read_conllu(path)[1]["tags"] == ["PRON", "VERB", "CCONJ", "VERB", "PUNCT"]
    assert read_conllu(path, column="xpos", multiword="split")[0]["tags"][:2] == ["APPR", "ART"]


def test_conllu_unannotated_sentence_has_no_tags(tmp_path):
    path = write(tmp_path / "x.conllu",
                 "1\t日本\t_\t_\t_\t_\t_\t_\t_\t_\n2\tです\t_\t_\t_\t_\t_\t_\t_\t_\n")
    assert read_conllu(path, task=UDPOS) == [{"tokens": ["日本", "です"], "tags": None}]


def test_conllu_malformed_line_names_file_and_line(tmp_path):
    path = write(tmp_path / "bad.conllu", CONLLU.replace("3\tGlück\tGlück\tNOUN\tNN\t_\t4\tobl",
                                                         "3\tGlück\tNOUN\tNN\t_\t4\tobl"))
    with pytest.raises(AdapterxlError, match=r"bad\.conllu:7: expected 10 tab-separated CoNLL-U "
                                             r"columns .* found 9"):
        read_conllu(path, task=UDPOS)


def test_conllu_unknown_tag(tmp_path):
    path = write(tmp_path / "t.conllu", CONLLU.replace("\tADP\t", "\tPREP\t"))
    with pytest.raises(AdapterxlError) as e:
        read_conllu(path, task=UDPOS)
    assert str(e.value) == (f"{path}:5: label 'PREP' is not in the label set of udpos "
                            f"({', '.join(UPOS)})")


# --------------------------------------------------------------------------- token/tag columns

PANX_RAW = """\
-DOCSTART-\tO

de:Angela\tB-PER
de:Merkel\tI-PER
de:besuchte\tO
de:São\tB-LOC
de:Paulo\tI-LOC
de:.\tO

de:Die\tO
de:Uhr\tO
de:zeigt\tO
de:12:30\tO


de:Siemens\tB-ORG
"""


def test_conll_columns_strip_language_prefixes_and_docstart(tmp_path):
    rows = read_conll_columns(write(tmp_path / "de-train", PANX_RAW), task=PANX)
    assert [r["tokens"] for r in rows] == [
        ["Angela", "Merkel", "besuchte", "São", "Paulo", "."],
        ["Die", "Uhr", "zeigt", "12:30"],
        ["Siemens"],
    ]
    assert [[NER[t] for t in r["tags"]] for r in rows] == [
        ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O"], ["O", "O", "O", "O"], ["B-ORG"]]


def test_conll_columns_keep_colons_when_not_every_token_is_prefixed(tmp_path):
    path = write(tmp_path / "x.tsv", "ja:\tO\nZeit\tO\n")
    assert read_conll_columns(path, task=PANX)[0]["tokens"] == ["ja:", "Zeit"]


def test_conll_columns_whitespace_separated_conll2003_style(tmp_path):
    path = write(tmp_path / "eng.testa",
                 "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n"
                 "German JJ B-NP O\n")
    assert read_conll_columns(path, task=PANX) == [
        {"tokens": ["EU", "rejects", "German"], "tags": [3, 0, 0]}]


def test_conll_columns_test_file_without_tags(tmp_path):
    # XTREME writes udpos/panx test files with tokens only
    path = write(tmp_path / "test-zh.tsv", "北京\n是\n首都\n\n你好\n")
    assert read_conll_columns(path, task=PANX) == [
        {"tokens": ["北京", "是", "首都"], "tags": None}, {"tokens": ["你好"], "tags": None}]


def test_conll_columns_labels_none_keeps_strings(tmp_path):
    path = write(tmp_path / "dev-de.tsv", "Bären\tNOUN\nschlafen\tVERB\n")
    rows = read_conll_columns(path, task=task("udpos", "tagging", None))
    assert rows == [{"tokens": ["Bären", "schlafen"], "tags": ["NOUN", "VERB"]}]


def test_conll_columns_missing_tag_names_file_and_line(tmp_path):
    path = write(tmp_path / "dev-de.tsv", "Der\tDET\nHund\tNOUN\n\nbellt\n")
    with pytest.raises(AdapterxlError, match=r"dev-de\.tsv:4: expected a token and its tag "
                                             r"separated by a tab \(as on line 1\)"):
        read_conll_columns(path, task=UDPOS)


def test_conll_columns_unknown_tag(tmp_path):
    path = write(tmp_path / "train-de.tsv", "Berlin\tB-LOC\nist\tO\n\nBonn\tB-CITY\n")
    with pytest.raises(AdapterxlError) as e:
        read_conll_columns(path, task=PANX)
    assert str(e.value) == (f"{path}:4: label 'B-CITY' is not in the label set of panx "
                            f"(O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC)")


def test_conll_file_with_conllu_columns_is_read_as_conllu(tmp_path):
    path = write(tmp_path / "de_gsd-ud-dev.conll", CONLLU)
    assert read_conll_columns(path, task=UDPOS)[1]["tokens"] == ["Sie", "kam", "und", "ging", "."]


# --------------------------------------------------------------------------- TSV


def write_like_xtreme(path, rows):
    """utils_preprocess.py writes xnli/pawsx with csv.writer(delimiter='\\t'): \\r\\n line
    ends, fields with quotes get quoted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        for row in rows:
            writer.writerow(row)
    return path


def test_headerless_xtreme_xnli_tsv(tmp_path):
    dev = write_like_xtreme(tmp_path / "dev-zh.tsv", [
        ["他说：“我们走吧。”", "他想离开。", "entailment"],
        ['She said "no" twice.', "She agreed.", "contradiction"],
        ["Er kam.", "Er ging.", "neutral"],
    ])
    assert read_tsv(XNLI, dev, header=False) == [
        {"text": ("他说：“我们走吧。”", "他想离开。"), "label": 0},
        {"text": ('She said "no" twice.', "She agreed."), "label": 2},
        {"text": ("Er kam.", "Er ging."), "label": 1},
    ]
    test = write_like_xtreme(tmp_path / "test-ar.tsv",
                             [["الجو جميل اليوم.", "الطقس سيء."]])
    assert read_tsv(XNLI, test, header=False) == [
        {"text": ("الجو جميل اليوم.", "الطقس سيء."), "label": None}]
    # header detection: a sentence pair is not a header row
    assert read_tsv(XNLI, dev)[0]["label"] == 0
    # XTREME's processors read these files with no quote character: the model sees the marks
    assert read_tsv(XNLI, dev, header=False, unquote=False)[1]["text"] == (
        '"She said ""no"" twice."', "She agreed.")


def test_headerless_pawsx_digit_labels_and_raw_quotes(tmp_path):
    path = write(tmp_path / "train-en.tsv",
                 '"Quoted" start, then text.\tAnother one.\t1\nA.\tB.\t0\n')
    assert read_tsv(PAWSX, path, header=False) == [
        {"text": ('"Quoted" start, then text.', "Another one."), "label": 1},
        {"text": ("A.", "B."), "label": 0}]


def test_headerless_tsv_regression_and_errors(tmp_path):
    path = write(tmp_path / "dev.de.tsv", "Ein Mann spielt.\tEin Mann musiziert.\t4.2\n")
    assert read_tsv(STS, path) == [{"text": ("Ein Mann spielt.", "Ein Mann musiziert."),
                                    "label": 4.2}]
    bad = write(tmp_path / "bad.tsv", "A.\tB.\tneutral\nnur ein Feld\n")
    with pytest.raises(AdapterxlError, match=r"bad\.tsv:2: expected 2 or 3 tab-separated "
                                             r"columns \(first, second\[, label\]\), found 1"):
        read_tsv(XNLI, bad, header=False)
    unknown = write(tmp_path / "u.tsv", "A.\tB.\tneutral\nC.\tD.\tcontradictory\nE.\tF.\tmaybe\n")
    with pytest.raises(AdapterxlError, match=r"u\.tsv:3: label 'maybe' is not in the label set "
                                             r"of xnli \(entailment, neutral, contradiction\)"):
        read_tsv(XNLI, unknown)


@pytest.fixture
def fake_convert(monkeypatch):
    """A stand-in for adapterxl.data.convert (written separately) recording its calls."""
    calls = []

    def convert(task, record, where):
        calls.append((task.name, record, where))
        return {"converted": record}

    module = types.ModuleType("adapterxl.data.convert")
    module.convert = convert
    monkeypatch.setitem(sys.modules, "adapterxl.data.convert", module)
    import adapterxl.data as package
    monkeypatch.setattr(package, "convert", module, raising=False)
    return calls


def test_headed_tsv_and_jsonl_records_go_through_convert(tmp_path, fake_convert):
    tsv = write(tmp_path / "dev_2k.tsv", "id\tsentence1\tsentence2\tlabel\n"
                                        "1\tDas ist gut.\tDas ist schön.\t1\n2\tJa.\tNein.\n")
    rows = read_tsv(PAWSX, tsv)
    assert len(rows) == 2
    assert fake_convert[0] == ("pawsx", {"id": "1", "sentence1": "Das ist gut.",
                                         "sentence2": "Das ist schön.", "label": "1"},
                               f"{tsv}:2")
    assert fake_convert[1][1]["label"] is None  # missing trailing column
    jsonl = write(tmp_path / "test.de.jsonl",
                  json.dumps({"premise": "Über uns.", "hypothesis": "Ja.", "label": 1},
                             ensure_ascii=False) + "\n\n" + json.dumps({"text": ["a", "b"]}) + "\n")
    fake_convert.clear()
    rows = load_local(XNLI, tmp_path, "test", "de")
    assert [c[2] for c in fake_convert] == [f"{jsonl}:1", f"{jsonl}:3"]
    assert rows[0] == {"converted": {"premise": "Über uns.", "hypothesis": "Ja.", "label": 1}}


def test_jsonl_line_that_is_not_json(tmp_path, fake_convert):
    write(tmp_path / "train.jsonl", '{"premise": "a"}\n{oops\n')
    with pytest.raises(AdapterxlError, match=r"train\.jsonl:2: not valid JSON"):
        load_local(XNLI, tmp_path, "train", "en")


# --------------------------------------------------------------------------- retrieval


def test_retrieval_jsonl_with_and_without_gold(tmp_path):
    lines = [{"query": "Wo ist der Bahnhof?", "id": "q1", "gold": ["c2"]},
             {"candidate": "Where is the station?", "id": "c2"},
             {"candidate": "I like tea.", "id": "c1"},
             {"query": "Ich mag Tee.", "id": "q2", "gold": ["c1"]}]
    path = write(tmp_path / "test.de.jsonl",
                 "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n")
    assert read_retrieval_jsonl(path) == {
        "queries": [{"id": "q1", "text": "Wo ist der Bahnhof?"},
                    {"id": "q2", "text": "Ich mag Tee."}],
        "candidates": [{"id": "c2", "text": "Where is the station?"},
                       {"id": "c1", "text": "I like tea."}],
        "gold": {"q1": ["c2"], "q2": ["c1"]}}
    hidden = write(tmp_path / "h.jsonl", '{"query": "x", "id": 1}\n{"candidate": "y", "id": 2}\n')
    assert read_retrieval_jsonl(hidden)["gold"] is None
    bad = write(tmp_path / "b.jsonl", '{"query": "x", "id": 1, "gold": [9]}\n'
                                      '{"candidate": "y", "id": 2}\n')
    with pytest.raises(AdapterxlError, match=r"b\.jsonl:1: gold candidate '9' of query '1'"):
        read_retrieval_jsonl(bad)


def bucc_files(folder, lang="de"):
    write(folder / f"{lang}-en.dev.{lang}",
          f"{lang}-000000001\tDie Katze schläft.\n{lang}-000000002\tGrüße aus Köln.\n")
    write(folder / f"{lang}-en.dev.en",
          "en-000000001\tGreetings from Cologne.\nen-000000002\tStocks fell.\n"
          "en-000000003\tThe cat sleeps.\n")
    write(folder / f"{lang}-en.dev.gold",
          f"{lang}-000000001\ten-000000003\n{lang}-000000002\ten-000000001\n")
    write(folder / f"{lang}-en.test.{lang}", f"{lang}-000000101\tEin Satz.\n")
    write(folder / f"{lang}-en.test.en", "en-000000101\tA sentence.\nen-000000102\tMore.\n")


def test_bucc_dev_has_gold_and_test_has_none(tmp_path):
    bucc_files(tmp_path / "bucc2018")
    dev = read_bucc(tmp_path / "bucc2018", "de", "dev")
    assert dev["queries"] == [{"id": "de-000000001", "text": "Die Katze schläft."},
                              {"id": "de-000000002", "text": "Grüße aus Köln."}]
    assert [c["id"] for c in dev["candidates"]] == ["en-000000001", "en-000000002",
                                                    "en-000000003"]
    assert dev["gold"] == {"de-000000001": ["en-000000003"], "de-000000002": ["en-000000001"]}
    assert dev["repeated"] == {"queries": [], "candidates": []}
    assert read_bucc(tmp_path / "bucc2018", "de", "validation") == dev
    test = read_bucc(tmp_path / "bucc2018", "de", "test")
    assert test["gold"] is None and len(test["candidates"]) == 2


def test_bucc_repeated_sentence_is_mined_once_and_listed_to_be_dropped(tmp_path):
    folder = tmp_path / "bucc2018"
    bucc_files(folder)
    write(folder / "de-en.dev.en", "en-000000001\tGreetings from Cologne.\nen-000000002\tStocks "
          "fell.\nen-000000003\tThe cat sleeps.\nen-000000004\tStocks fell.\n")
    dev = read_bucc(folder, "de", "dev")
    assert [c["id"] for c in dev["candidates"]] == ["en-000000001", "en-000000002",
                                                    "en-000000003"]
    assert dev["repeated"] == {"queries": [], "candidates": ["en-000000002"]}
    from adapterxl.formats.retrieval import mined_pairs
    import torch
    # queries 0,1 and candidates 0,1,2: query 1 is closest to candidate 1 (the repeated one)
    q = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.1]])
    c = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.1, 1.0]])
    pairs = mined_pairs(q, c, dev)
    assert ("de-000000001", "en-000000003") in {(s, t) for s, t, _ in pairs}
    assert all(t != "en-000000002" for _, t, _ in pairs)
    assert len(mined_pairs(q, c, dev | {"repeated": None})) == len(pairs) + 1


def test_bucc_errors(tmp_path):
    folder = tmp_path / "bucc2018"
    bucc_files(folder)
    write(folder / "de-en.dev.gold", "de-000000001\ten-000000003\nde-000000009\ten-000000001\n")
    with pytest.raises(AdapterxlError, match=r"de-en\.dev\.gold:2: 'de-000000009' is not an id"):
        read_bucc(folder, "de", "dev")
    write(folder / "de-en.test.de", "de-000000101 Ein Satz ohne Tab.\n")
    with pytest.raises(AdapterxlError, match=r"de-en\.test\.de:1: expected 'id<TAB>sentence'"):
        read_bucc(folder, "de", "test")
    with pytest.raises(AdapterxlError, match=r"no BUCC test files for fr .*fr-en\.test\.fr"):
        read_bucc(folder, "fr", "test")


def test_tatoeba_aligned_and_hidden(tmp_path):
    src = write(tmp_path / "tatoeba.jpn-eng.jpn", "猫が好きです。\n今日は暑い。\n")
    trg = write(tmp_path / "tatoeba.jpn-eng.eng", "I like cats.\nIt is hot today.\n")
    corpus = read_tatoeba(src, trg, "ja")
    assert corpus == {
        "queries": [{"id": "ja-0", "text": "猫が好きです。"},
                    {"id": "ja-1", "text": "今日は暑い。"}],
        "candidates": [{"id": "en-0", "text": "I like cats."},
                       {"id": "en-1", "text": "It is hot today."}],
        "gold": {"ja-0": ["en-0"], "ja-1": ["en-1"]}}
    assert read_tatoeba(src, trg, "ja", gold=None)["gold"] is None
    # XTREME's label file: line k is English line k's translation's line number in the
    # other file. Three lines so that the two orientations differ (1 2 0 inverted is 2 0 1).
    src = write(tmp_path / "x.jpn", "猫が好きです。\n今日は暑い。\nありがとう。\n")
    trg = write(tmp_path / "x.eng", "Thanks.\nI like cats.\nIt is hot today.\n")
    labels = write(tmp_path / "test-ja.tsv", "2\n0\n1\n")
    assert read_tatoeba(src, trg, "ja", gold=labels)["gold"] == {
        "ja-0": ["en-1"], "ja-1": ["en-2"], "ja-2": ["en-0"]}
    with pytest.raises(AdapterxlError,
                       match=r"bad\.tsv:1: expected a line number of .*x\.jpn \(0\.\.2\)"):
        read_tatoeba(src, trg, "ja", gold=write(tmp_path / "bad.tsv", "3\n0\n1\n"))
    short = write(tmp_path / "short.eng", "I like cats.\n")
    with pytest.raises(AdapterxlError, match=r"has 3 sentences but .*short\.eng has 1"):
        read_tatoeba(src, short, "ja")


# --------------------------------------------------------------------------- discovery


def xtreme_download(root):
    """A miniature of what XTREME's scripts/download_data.sh leaves in download/."""
    write_like_xtreme(root / "xnli" / "train-en.tsv", [["A man sleeps.", "A man rests.",
                                                        "entailment"]])
    write_like_xtreme(root / "xnli" / "dev-de.tsv", [["Ein Mann schläft.", "Er ruht.", "neutral"]])
    write_like_xtreme(root / "xnli" / "test-de.tsv", [["Ein Mann schläft.", "Er ruht."]])
    write_like_xtreme(root / "xnli" / "test-zh.tsv", [["男人在睡觉。", "他在休息。"]])
    write(root / "udpos" / "train-en.tsv", "The\tDET\ndog\tNOUN\n\n")
    write(root / "udpos" / "dev-de.tsv", "Der\tDET\nHund\tNOUN\n\n")
    write(root / "udpos" / "test-de.tsv", "Der\nHund\n\n")
    write(root / "panx" / "dev-zh.tsv", "北京\tB-LOC\n是\tO\n\n")
    ctx = "Die Hauptstadt ist Berlin."
    qa = squad([{"context": ctx, "qas": [{"id": "m1", "question": "Welche?", "answers": [
        {"answer_start": ctx.index("Berlin"), "text": "Berlin"}]}]}])
    write(root / "mlqa" / "MLQA_V1" / "dev" / "dev-context-de-question-de.json", qa)
    write(root / "mlqa" / "MLQA_V1" / "test" / "test-context-de-question-de.json", qa)
    write(root / "squad" / "train-v1.1.json", qa.replace('"m1"', '"s1"'))
    write(root / "xquad" / "xquad.de.json", qa)
    write(root / "tydiqa" / "tydiqa-goldp-v1.1-train" / "tydiqa.goldp.en.train.json", qa)
    write(root / "tydiqa" / "tydiqa-goldp-v1.1-dev" / "tydiqa.goldp.fi.dev.json", qa)
    bucc_files(root / "bucc2018")
    write(root / "tatoeba" / "de-en.de", "Ich bin müde.\nDanke!\n")
    write(root / "tatoeba" / "de-en.en", "I am tired.\nThanks!\n")
    write(root / "tatoeba" / "tatoeba.ara-eng.ara", "شكرا!\n")
    write(root / "tatoeba" / "tatoeba.ara-eng.eng", "Thanks!\n")
    return root


@pytest.mark.parametrize("sub", ["", "task"])
def test_xtreme_layout_from_download_or_task_folder(tmp_path, sub):
    download = xtreme_download(tmp_path / "download")

    def root(t):
        return download / t.name if sub else download

    assert load_local(XNLI, root(XNLI), "train", "en") == [
        {"text": ("A man sleeps.", "A man rests."), "label": 0}]
    assert load_local(XNLI, root(XNLI), "dev", "de")[0]["label"] == 1
    assert load_local(XNLI, root(XNLI), "test", "zh") == [
        {"text": ("男人在睡觉。", "他在休息。"), "label": None}]
    assert local_languages(XNLI, root(XNLI), "test") == ["de", "zh"]
    assert load_local(UDPOS, root(UDPOS), "validation", "de") == [
        {"tokens": ["Der", "Hund"], "tags": [UPOS.index("DET"), UPOS.index("NOUN")]}]
    assert load_local(UDPOS, root(UDPOS), "test", "de") == [{"tokens": ["Der", "Hund"],
                                                             "tags": None}]
    assert load_local(PANX, root(PANX), "validation", "zh")[0]["tags"] == [5, 0]
    kind, paths = local_files(MLQA, root(MLQA), "test", "de")
    assert kind == "squad_json" and paths[0].parts[-3:] == ("MLQA_V1", "test",
                                                             "test-context-de-question-de.json")
    assert load_local(MLQA, root(MLQA), "validation", "de")[0]["answers"][0]["text"] == "Berlin"
    assert load_local(SQUAD, root(SQUAD), "train", "en")[0]["id"] == "s1"
    assert load_local(XQUAD, root(XQUAD), "test", "de")[0]["id"] == "m1"
    assert local_languages(TYDIQA, root(TYDIQA), "train") == ["en"]
    assert local_languages(TYDIQA, root(TYDIQA), "test") == ["fi"]
    dev = load_local(BUCC, root(BUCC), "validation", "de")
    assert dev["gold"]["de-000000002"] == ["en-000000001"]
    assert load_local(BUCC, root(BUCC), "test", "de")["gold"] is None
    assert local_languages(BUCC, root(BUCC), "test") == ["de"]
    hidden = load_local(TATOEBA, root(TATOEBA), "test", "de")  # English side sorted by XTREME
    assert hidden["gold"] is None and hidden["queries"][0]["text"] == "Ich bin müde."
    assert load_local(TATOEBA, root(TATOEBA), "test", "ar")["gold"] == {"ar-0": ["en-0"]}


def test_simple_layout_with_dev_and_training_language(tmp_path):
    write(tmp_path / "dev.de.conllu", CONLLU)
    write(tmp_path / "train.conll", "The\tDET\ncat\tNOUN\n")
    write(tmp_path / "test.ja.txt", "猫\tNOUN\nです\tAUX\n")
    assert local_files(UDPOS, tmp_path, "validation", "de") == ("conllu",
                                                                [tmp_path / "dev.de.conllu"])
    assert load_local(UDPOS, tmp_path, "dev", "de")[0]["tokens"][:2] == ["Zum", "Glück"]
    assert load_local(UDPOS, tmp_path, "train", "en") == [
        {"tokens": ["The", "cat"], "tags": [UPOS.index("DET"), UPOS.index("NOUN")]}]
    assert local_languages(UDPOS, tmp_path, "train") == ["en"]  # train.conll: training language
    assert local_languages(UDPOS, tmp_path, "test") == ["ja"]
    # the simple layout wins over XTREME's when both are there
    write(tmp_path / "udpos" / "dev-de.tsv", "Nur\tADV\n")
    assert local_files(UDPOS, tmp_path, "validation", "de")[0] == "conllu"


def test_simple_layout_other_formats(tmp_path):
    write(tmp_path / "train.de.json", squad([{"context": "Ab.", "qas": [
        {"id": "x", "question": "?", "answers": [{"answer_start": 0, "text": "Ab"}]}]}]))
    assert load_local(task("mlqa", "qa", None, ("de",)), tmp_path, "train", "de")[0]["id"] == "x"
    write(tmp_path / "train.de.txt", "Erste Zeile.\n\nZweite Zeile.\n")
    assert load_local(task("cc", "mlm", None, ("de",)), tmp_path, "train", "de") == [
        {"text": "Erste Zeile."}, {"text": "Zweite Zeile."}]
    assert read_text_lines(tmp_path / "train.de.txt")[1] == {"text": "Zweite Zeile."}
    write(tmp_path / "test.de.tsv", "Ich bin müde.\tI am tired.\n")
    assert load_local(TATOEBA, tmp_path, "test", "de")["gold"] == {"de-0": ["en-0"]}


def test_nothing_found_lists_what_was_looked_for(tmp_path):
    with pytest.raises(AdapterxlError) as e:
        load_local(UDPOS, tmp_path, "test", "de")
    message = str(e.value)
    assert message.startswith(f"no test data for udpos in de under {tmp_path} (looked for "
                              f"test.de.jsonl, test.de.conllu, test.de.conll, test.de.tsv, ")
    assert message.endswith(", XTREME layout udpos/test-de.tsv)")
    assert "\n" not in message
    with pytest.raises(AdapterxlError, match=r"validation\.de\.jsonl, .*dev\.de\.conllu.*"
                                             r"XTREME layout udpos/dev-de\.tsv"):
        load_local(UDPOS, tmp_path, "validation", "de")
    with pytest.raises(AdapterxlError, match=r"XTREME's download layout has no train data for "
                                             r"xquad"):
        load_local(XQUAD, tmp_path, "train", "de")
    with pytest.raises(AdapterxlError, match=r"XTREME layout bucc2018/de-en\.test\.de \+ "
                                             r"bucc2018/de-en\.test\.en or"):
        load_local(BUCC, tmp_path, "test", "de")


def test_bad_split_and_missing_directory(tmp_path):
    with pytest.raises(AdapterxlError, match=r"unknown split 'testing'"):
        load_local(XNLI, tmp_path, "testing", "de")
    with pytest.raises(AdapterxlError, match=r"data directory .*nope.* does not exist"):
        local_languages(XNLI, tmp_path / "nope", "test")


@pytest.mark.parametrize("name,reader", [
    ("a.json", read_squad_json), ("a.conllu", read_conllu), ("a.tsv", read_conll_columns),
    ("b.txt", read_text_lines), ("c.jsonl", read_retrieval_jsonl),
    ("d.tsv", lambda p: read_tsv(XNLI, p))])
def test_empty_files_are_errors(tmp_path, name, reader):
    path = write(tmp_path / name, "\n  \n")
    with pytest.raises(AdapterxlError) as e:
        reader(path)
    assert str(e.value) == f"{path} is empty"


def test_files_without_examples_are_errors(tmp_path):
    with pytest.raises(AdapterxlError, match=r"only-comments\.conllu is empty \(no sentences\)"):
        read_conllu(write(tmp_path / "only-comments.conllu", "# sent_id = 1\n"))
    with pytest.raises(AdapterxlError, match=r"e\.json is empty \(no questions\)"):
        read_squad_json(write(tmp_path / "e.json", '{"data": []}'))
    with pytest.raises(AdapterxlError, match=r"d\.tsv is empty \(no tokens\)"):
        read_conll_columns(write(tmp_path / "d.tsv", "-DOCSTART-\tO\n\n"))


def test_conll_columns_trailing_tab_and_empty_tag(tmp_path):
    path = write(tmp_path / "dev-de.tsv", "Köln\tB-LOC\t\nliegt\tO\n")
    assert read_conll_columns(path, task=PANX)[0]["tags"] == [5, 0]
    path = write(tmp_path / "dev-fr.tsv", "Paris\tB-LOC\nest\t\n")
    with pytest.raises(AdapterxlError, match=r"dev-fr\.tsv:2: expected a token and its tag"):
        read_conll_columns(path, task=PANX)
