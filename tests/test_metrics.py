"""Metrics on hand-computed cases that follow the official XTREME / XTREME-R definitions
(SQuAD v1.1 / v2.0 and MLQA scripts, seqeval 0.0.12, LASER's bucc_eval, XTREME-R's AP@k).
Values are fractions; XTREME prints them x100."""
import math

import numpy as np
import pytest

from adapterxl.errors import AdapterxlError
from adapterxl.scoring.metrics import (
    METRICS, accuracy, bucc_f1, extract_chunks, map_at_k, mlqa,
    mlqa_normalize, pearson_spearman, primary, score, squad, squad_normalize,
    suite_score, tagging_f1, task_score, token_accuracy)


# ----------------------------------------------------------------------------- accuracy

def test_accuracy_hand_computed():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    assert accuracy(["a", "b"], ["a", "c"]) == 0.5


def test_accuracy_refuses_mismatched_or_empty():
    with pytest.raises(ValueError):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError):
        accuracy([], [])


def test_score_takes_the_argmax_of_logits():
    logits = np.array([[0.1, 0.7, 0.2], [2.0, -1.0, 0.0], [0.0, 0.0, 3.0]])
    assert score("accuracy", logits, [1, 0, 1]) == pytest.approx(2 / 3)


def test_score_regression_outputs_and_refusals():
    # outputs (n, 1) = 1, 2, 2, 10 vs labels 1, 2, 3, 4: see test_pearson_spearman_with_ties
    out = np.array([[1.0], [2.0], [2.0], [10.0]])
    expected = (13.5 / math.sqrt(52.75 * 5) + math.sqrt(0.9)) / 2
    assert score("pearson_spearman", out, [1, 2, 3, 4]) == pytest.approx(expected)
    with pytest.raises(ValueError, match="decoded predictions"):
        score("tagging_f1", out, [1, 2, 3, 4])
    with pytest.raises(AdapterxlError, match="unknown metric"):
        score("acuracy", out, [1, 2, 3, 4])


def test_format_table():
    from adapterxl.evaluation import format_table

    table = format_table({"task": "xnli", "split": "test", "metric": "accuracy",
                          "per_language": {"de": 0.5, "en": 0.75},
                          "average": 0.625, "skipped_languages": ["sw"]})
    assert "| xnli | 50.0 | 75.0 | 62.5 |" in table and "sw" in table


# ----------------------------------------------------------------------------- SQuAD

def test_squad_normalization_deletes_ascii_punctuation_and_articles():
    # "The  Eiffel-Tower!" -> lower "the  eiffel-tower!" -> punctuation deleted (not replaced
    # by a space): "the  eiffeltower" -> article "the" -> " " -> whitespace fixed: "eiffeltower"
    assert squad_normalize("The  Eiffel-Tower!") == "eiffeltower"
    assert squad_normalize("  The  Eiffel Tower! ") == "eiffel tower"
    # "a"/"an"/"the" only as whole words: "another" and "theatre" stay
    assert squad_normalize("An another theatre, the end") == "another theatre end"
    # Non-ASCII punctuation is not in string.punctuation: it stays in SQuAD
    assert squad_normalize("«Paris»") == "«paris»"


def test_squad_exact_match_and_f1():
    answers = {"q1": ["eiffel tower"], "q2": ["eiffel tower"], "q3": ["a red barn door"]}
    preds = {"q1": "The  Eiffel-Tower!",   # "eiffeltower" vs "eiffel tower": EM 0, F1 0
             "q2": "The Eiffel Tower!",    # "eiffel tower": EM 1, F1 1
             "q3": "the big red barn"}     # [big red barn] vs [red barn door]: 2 common,
    #                                        P = R = 2/3, F1 = 2/3, EM 0
    r = squad(preds, answers)
    assert r["exact_match"] == pytest.approx(1 / 3)
    assert r["f1"] == pytest.approx((0 + 1 + 2 / 3) / 3)
    assert r["missing"] == 0


def test_squad_takes_the_max_over_gold_answers():
    # pred [red barn]; vs [barn]: P 1/2, R 1, F1 2/3; vs [big red barn]: P 1, R 2/3, F1 0.8
    r = squad({"q": "red barn"}, {"q": ["barn", "big red barn"]})
    assert r["f1"] == pytest.approx(0.8) and r["exact_match"] == 0.0
    # EM is a max too: the second answer matches after normalization
    r = squad({"q": "The Red Barn."}, {"q": ["barn", "red barn"]})
    assert r["exact_match"] == 1.0 and r["f1"] == 1.0


def test_squad_missing_prediction_counts_zero_and_warns():
    with pytest.warns(UserWarning, match="1 of 2 questions"):
        r = squad({"q1": "x", "unknown-id": "y"}, {"q1": ["x"], "q2": ["y"]})
    # q1: 1; q2 missing: 0; averaged over the 2 questions of `answers`
    assert r == {"exact_match": 0.5, "f1": 0.5, "missing": 1}


def test_squad_v1_needs_gold_answers():
    with pytest.raises(ValueError, match="version=2"):
        squad({"q": ""}, {"q": []})
    with pytest.raises(ValueError):
        squad({"q": ""}, {"q": ["x"]}, version=3)


def test_squad_v2_unanswerable():
    answers = {"a": ["Paris"], "u": []}
    # "" is the right answer to an unanswerable question: EM 1, F1 1 (both empty)
    assert squad({"a": "Paris", "u": ""}, answers, version=2)["f1"] == 1.0
    # answering the unanswerable, abstaining on the answerable: all 0
    r = squad({"a": "", "u": "Paris"}, answers, version=2)
    assert r["exact_match"] == 0.0 and r["f1"] == 0.0
    # "The" normalizes to "": it counts as abstaining (EM 1 and F1 1 on "u")
    r = squad({"a": "Paris", "u": "The"}, answers, version=2)
    assert r["exact_match"] == 1.0 and r["f1"] == 1.0


def test_squad_v2_empty_token_lists_differ_from_v1():
    # gold "the" and prediction "a" both normalize to "".
    # v1.1: EM 1, but F1 0 (no common token).
    r1 = squad({"q": "a"}, {"q": ["the"]}, version=1)
    assert r1["exact_match"] == 1.0 and r1["f1"] == 0.0
    # v2.0: a gold answer normalizing to "" is dropped -> unanswerable -> F1 1 (both empty).
    r2 = squad({"q": "a"}, {"q": ["the"]}, version=2)
    assert r2["exact_match"] == 1.0 and r2["f1"] == 1.0
    # ... but only when nothing is left: golds ["the", "Paris"] -> ["Paris"], so abstaining
    # is wrong (EM 0, F1 0), though "" would equal the normalized "the"
    r3 = squad({"q": ""}, {"q": ["the", "Paris"]}, version=2)
    assert r3["exact_match"] == 0.0 and r3["f1"] == 0.0


# ----------------------------------------------------------------------------- MLQA

def test_mlqa_spanish_articles_are_removed_but_not_in_squad():
    preds, answers = {"q": "La Casa Blanca"}, {"q": ["casa blanca"]}
    # es: "la casa blanca" -> "la" is an article -> "casa blanca": EM 1
    assert mlqa(preds, answers, "es") == {"exact_match": 1.0, "f1": 1.0, "missing": 0}
    # SQuAD / MLQA-en keep "la": [la casa blanca] vs [casa blanca]: P 2/3, R 1, F1 0.8
    assert squad(preds, answers)["f1"] == pytest.approx(0.8)
    assert mlqa(preds, answers, "en")["f1"] == pytest.approx(0.8)
    assert mlqa(preds, answers, "en")["exact_match"] == 0.0


def test_mlqa_per_language_articles():
    assert mlqa_normalize("Der Rhein", "de") == "rhein"
    assert mlqa_normalize("cái bàn", "vi") == "bàn"
    assert mlqa_normalize("The Ganga", "hi") == "the ganga"    # Hindi: no articles
    assert mlqa_normalize("An apple", "en") == "apple"
    with pytest.raises(ValueError, match="MLQA"):
        mlqa_normalize("x", "fr")
    with pytest.raises(ValueError):
        mlqa({"q": "x"}, {"q": ["x"]}, "ja")


def test_mlqa_arabic_article_is_removed_everywhere():
    # "ال" is replaced by a space wherever it occurs: "الكتاب" -> " كتاب" -> "كتاب"
    assert mlqa({"q": "الكتاب"}, {"q": ["كتاب"]}, "ar")["exact_match"] == 1.0
    # ... even at the end of a word: "سؤال" (question) -> "سؤ"
    assert mlqa_normalize("سؤال", "ar") == "سؤ"


def test_mlqa_unicode_punctuation():
    # ¿ and ? (category Po) are deleted; "¿Qué?" -> "qué"
    assert mlqa_normalize("¿Qué?", "es") == "qué"
    # « » (Pi/Pf) are deleted in MLQA, kept by SQuAD's ASCII-only set
    assert mlqa({"q": "«Paris»"}, {"q": ["paris"]}, "en")["exact_match"] == 1.0
    assert squad({"q": "«Paris»"}, {"q": ["paris"]})["exact_match"] == 0.0
    # "$" is a symbol (Sc) but in string.punctuation: deleted; "€" (Sc, not ASCII) stays
    assert mlqa_normalize("$5 €", "en") == "5 €"
    # an en dash (Pd) is deleted, joining the words like SQuAD's hyphen
    assert mlqa_normalize("1990–2000", "en") == "19902000"


def test_mlqa_chinese_mixed_segmentation():
    # every CJK character is a token; other runs split on whitespace; "。" (Po) is deleted
    assert mlqa_normalize("Abc北京 def。", "zh") == "abc 北 京 def"
    # pred 北 京 大 学 vs gold 北 京: 2 common, P 2/4, R 1, F1 2/3; EM 0
    r = mlqa({"q": "北京大学"}, {"q": ["北京"]}, "zh")
    assert r["f1"] == pytest.approx(2 / 3) and r["exact_match"] == 0.0
    # without segmentation (whitespace languages) the one-token strings share nothing
    assert mlqa({"q": "北京大学"}, {"q": ["北京"]}, "en")["f1"] == 0.0


def test_mlqa_max_over_answers_and_missing():
    answers = {"q1": ["el río", "río grande"], "q2": ["x"]}
    with pytest.warns(UserWarning):
        r = mlqa({"q1": "Río Grande"}, answers, "es")
    # q1: vs "el río" -> [río]: P 1/2, R 1, F1 2/3; vs "río grande": EM 1, F1 1 -> max 1
    # q2 missing -> 0; mean over 2 questions
    assert r == {"exact_match": 0.5, "f1": 0.5, "missing": 1}


# ----------------------------------------------------------------------------- tagging

def test_tagging_wrong_end_is_a_miss():
    # gold PER spans 0-1, predicted PER spans 0-0: no chunk matches
    r = tagging_f1([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    assert r == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_tagging_wrong_type_counts_against_precision_and_recall():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"]]
    # gold {PER 0-1, LOC 3-3}, pred {PER 0-1, ORG 3-3}: 1 correct of 2 and 2
    assert tagging_f1(gold, pred) == {"precision": 0.5, "recall": 0.5, "f1": 0.5}


def test_tagging_i_after_o_starts_an_entity():
    assert extract_chunks([["I-PER", "I-PER", "O", "I-LOC"]]) == [("PER", 0, 1), ("LOC", 3, 3)]
    # so an IOB2-invalid prediction still matches the gold entity
    r = tagging_f1([["O", "B-LOC", "I-LOC"]], [["O", "I-LOC", "I-LOC"]])
    assert r["f1"] == 1.0
    # a type change inside an entity splits it
    assert extract_chunks([["B-PER", "I-LOC"]]) == [("PER", 0, 0), ("LOC", 1, 1)]


def test_tagging_iobes():
    # S-PER: one token; B-LOC E-LOC: 1-2; an E after an E starts and ends a new chunk
    assert extract_chunks([["S-PER", "B-LOC", "E-LOC", "E-LOC"]]) == [
        ("PER", 0, 0), ("LOC", 1, 2), ("LOC", 3, 3)]


def test_tagging_pos_tags_without_prefix():
    # first letter = boundary, whole tag = type: identical neighbours merge into one chunk
    assert extract_chunks([["DET", "NOUN", "NOUN", "VERB"]]) == [
        ("DET", 0, 0), ("NOUN", 1, 2), ("VERB", 3, 3)]
    # tags starting with "S" (SCONJ, SYM) behave like S-: always one-token chunks
    assert extract_chunks([["SCONJ", "SCONJ"]]) == [("SCONJ", 0, 0), ("SCONJ", 1, 1)]
    # gold {NOUN 0-1, VERB 2-2}, pred {NOUN 0-0, ADJ 1-1, VERB 2-2}: 1 correct
    # P 1/3, R 1/2, F1 = 2 * (1/6) / (5/6) = 0.4, while 2 of 3 tokens are right
    gold, pred = [["NOUN", "NOUN", "VERB"]], [["NOUN", "ADJ", "VERB"]]
    r = tagging_f1(gold, pred)
    assert r["precision"] == pytest.approx(1 / 3) and r["recall"] == pytest.approx(0.5)
    assert r["f1"] == pytest.approx(0.4)
    assert token_accuracy(gold, pred) == pytest.approx(2 / 3)


def test_tagging_chunks_stop_at_sentence_ends():
    # an "O" is placed after each sentence: the two NOUNs are separate chunks (offsets 0, 2)
    assert extract_chunks([["NOUN"], ["NOUN"]]) == [("NOUN", 0, 0), ("NOUN", 2, 2)]
    assert tagging_f1([["NOUN"], ["NOUN"]], [["NOUN", ], ["VERB"]])["recall"] == 0.5


def test_tagging_no_entities_scores_zero_and_lengths_must_match():
    # seqeval: no gold and no predicted chunk -> P = R = F1 = 0
    assert tagging_f1([["O", "O"]], [["O", "O"]])["f1"] == 0.0
    with pytest.raises(ValueError, match="sentence 0"):
        tagging_f1([["O", "O"]], [["O"]])
    with pytest.raises(ValueError):
        tagging_f1([["O"]], [["O"], ["O"]])
    with pytest.raises(ValueError):
        tagging_f1(["B-PER"], ["B-PER"])  # not a list of sentences


def test_token_accuracy():
    assert token_accuracy([["A", "B"], ["C"]], [["A", "C"], ["C"]]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        token_accuracy([["A", "B"]], [["A"]])
    with pytest.raises(ValueError):
        token_accuracy([[]], [[]])


# ----------------------------------------------------------------------------- regression

def test_pearson_spearman_with_ties():
    x, y = [1, 2, 2, 10], [1, 2, 3, 4]
    # Pearson: dx = -2.75 -1.75 -1.75 6.25, dy = -1.5 -.5 .5 1.5
    #   sum dx*dy = 13.5, sum dx^2 = 52.75, sum dy^2 = 5 -> 13.5 / sqrt(263.75)
    # Spearman: average ranks x = 1 2.5 2.5 4, y = 1 2 3 4
    #   sum = 4.5, sum dx^2 = 4.5, sum dy^2 = 5 -> 4.5 / sqrt(22.5) = sqrt(0.9)
    #   (ordinal ranks 1 2 3 4 would give 1.0)
    r = pearson_spearman(x, y)
    assert r["pearson"] == pytest.approx(13.5 / math.sqrt(263.75))
    assert r["spearman"] == pytest.approx(math.sqrt(0.9))
    assert primary("pearson_spearman", r) == pytest.approx(
        (13.5 / math.sqrt(263.75) + math.sqrt(0.9)) / 2)


def test_pearson_spearman_edge_cases():
    assert pearson_spearman([3, 2, 1], [1, 2, 3]) == {"pearson": -1.0, "spearman": -1.0}
    assert math.isnan(pearson_spearman([1, 1, 1], [1, 2, 3])["pearson"])
    with pytest.raises(ValueError):
        pearson_spearman([1, 2], [1, 2, 3])
    with pytest.raises(ValueError):
        pearson_spearman([1], [1])


# ----------------------------------------------------------------------------- retrieval

def test_bucc_counts():
    predicted = {("de-1", "en-1"), ("de-2", "en-2"), ("de-3", "en-9")}
    gold = {("de-1", "en-1"), ("de-2", "en-2"), ("de-4", "en-4"), ("de-5", "en-5")}
    # 2 correct: P 2/3, R 2/4, F1 = 2 * (1/3) / (7/6) = 4/7
    r = bucc_f1(predicted, gold)
    assert r["precision"] == pytest.approx(2 / 3) and r["recall"] == 0.5
    assert r["f1"] == pytest.approx(4 / 7)
    assert bucc_f1({("de-3", "en-9")}, gold) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_map_at_k_hand_computed():
    # relevant a, b found at ranks 1 and 3: (1/1 + 2/3) / min(20, 2) = 5/6
    assert map_at_k([["a", "x", "b"]], [{"a", "b"}]) == pytest.approx(5 / 6)
    # cut at k = 2: only a at rank 2 -> (1/2) / min(2, 2) = 1/4
    assert map_at_k([["x", "a", "b"]], [{"a", "b"}], k=2) == pytest.approx(0.25)
    # divisor is min(k, |relevant|): 3 relevant, k = 2, both top-2 relevant -> 2/2 = 1
    # (dividing by |relevant| would give 2/3)
    assert map_at_k([["a", "b", "x"]], [{"a", "b", "c"}], k=2) == 1.0
    # a repeated relevant item counts once: a@1 -> 1, a@2 skipped, b@3 -> 2/3 -> 5/6
    assert map_at_k([["a", "a", "b"]], [{"a", "b"}]) == pytest.approx(5 / 6)
    # mean over queries: 1 and 1/2 (single gold at rank 2 = reciprocal rank, Mewsli-X)
    assert map_at_k([["a"], ["x", "b"]], [{"a"}, {"b"}]) == 0.75
    # a relevant item below rank k scores nothing; an empty ranking scores 0
    assert map_at_k([["x"] * 20 + ["a"], []], [{"a"}, {"a"}]) == 0.0
    with pytest.raises(ValueError):
        map_at_k([["a"]], [set()])
    with pytest.raises(ValueError):
        map_at_k([["a"]], [{"a"}, {"b"}])


def test_map_with_tied_scores():
    from adapterxl.scoring.neighbours import rank

    # c0 and c2 tie (same embedding); ties go to the lower index, so the order is c1, c0, c2
    queries = np.array([[1.0, 0.0]])
    candidates = np.array([[0.6, 0.8], [1.0, 0.0], [0.6, 0.8]])
    ranking = [["c0", "c1", "c2"][j] for j in rank(queries, candidates, k=3)[0].tolist()]
    assert ranking == ["c1", "c0", "c2"]
    # relevant c2 is at rank 3: AP = 1/3 (1/2 if the tie went the other way)
    assert map_at_k([ranking], [{"c2"}]) == pytest.approx(1 / 3)


# ----------------------------------------------------------------------------- registry

def test_registry_names_and_calls():
    assert set(METRICS) == {"accuracy", "tagging_f1", "squad", "squad_v2", "mlqa",
                            "pearson_spearman", "bucc_f1", "map@20"}
    assert METRICS["accuracy"]([1, 0], [1, 1]) == {"accuracy": 0.5}
    assert METRICS["squad_v2"]({"u": ""}, {"u": []})["f1"] == 1.0
    assert METRICS["squad"]({"q": "x"}, {"q": ["x"]})["exact_match"] == 1.0
    assert METRICS["mlqa"]({"q": "la casa"}, {"q": ["casa"]}, "es")["exact_match"] == 1.0
    assert METRICS["map@20"]([["x", "a"]], [{"a"}]) == {"map@20": 0.5}
    assert METRICS["tagging_f1"]([["B-X"]], [["B-X"]])["f1"] == 1.0
    assert METRICS["bucc_f1"]({("a", "b")}, {("a", "b")})["f1"] == 1.0


def test_primary_and_task_scores():
    qa = {"exact_match": 0.5, "f1": 0.7}
    assert primary("mlqa", qa) == 0.7                      # dev selection: F1
    assert task_score("mlqa", qa) == pytest.approx(0.6)    # XTREME: (EM + F1) / 2
    assert task_score("squad", qa) == pytest.approx(0.6)
    assert task_score("squad_v2", qa) == pytest.approx(0.6)
    assert primary("tagging_f1", {"precision": 1.0, "recall": 0.5, "f1": 2 / 3}) == 2 / 3
    assert task_score("bucc_f1", {"precision": 1.0, "recall": 0.5, "f1": 0.6}) == 0.6
    assert task_score("pearson_spearman", {"pearson": 0.8, "spearman": 0.6}) == \
        pytest.approx(0.7)
    assert primary("map@20", {"map@20": 0.3}) == 0.3
    assert primary("accuracy", 0.25) == 0.25               # a bare number passes through
    with pytest.raises(ValueError, match="exact_match"):
        task_score("squad", {"f1": 0.7})
    with pytest.raises(AdapterxlError, match="did you mean 'mlqa'"):
        primary("mlq", qa)
    with pytest.raises(AdapterxlError):
        task_score("bleu", qa)


def test_xtreme_score_counts_qa_as_mean_of_em_and_f1():
    per_task = {"xnli": task_score("accuracy", {"accuracy": 0.8}),
                "mlqa": task_score("mlqa", {"exact_match": 0.5, "f1": 0.7}),   # 0.6
                "panx": task_score("tagging_f1", {"precision": 0.8, "recall": 1.0,
                                                  "f1": 0.9})}
    # (0.8 + 0.6 + 0.9) / 3; with QA's F1 alone it would be (0.8 + 0.7 + 0.9) / 3 = 0.8
    assert suite_score(per_task) == pytest.approx(2.3 / 3)
    with pytest.raises(ValueError):
        suite_score({})
