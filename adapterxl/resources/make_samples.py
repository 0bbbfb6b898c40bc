"""Deterministic synthetic samples for every task format (besides MNLI/XNLI).

The files under ``adapterxl/resources/samples/<task>/`` (and ``samples/text/<lang>.txt``)
are produced by this module, in the canonical keys of docs/FORMATS.md with labels and tags
as strings.  They exist so that tests and offline smoke runs can train a small adapter on
``builtin:tiny-xlmr`` (a frozen random-weight encoder) in a few hundred steps.  Such an
encoder's attention is close to uniform, so it sees token identity (and the bag of tokens
around) but hardly local context: every label here follows from which tokens occur, and
local context (a marker before an answer, a word's neighbours) backs it up for readers.

* pair classification (qqp, paws, pawsx): a paraphrase restates the first sentence after a
  restatement marker ("In other words,", "Das heißt,", "换句话说，", ...); a duplicate
  question rephrases the first with another template ("What is the reason ...", "Can
  someone tell me why ..."); a non-paraphrase swaps the subject or the object for another
  word of the lexicon, a non-duplicate does that or asks with another wh-word.
* NLI (anli_plus): ``make_nli_samples.py`` with its own seeds (hedge = neutral,
  negation = contradiction).
* regression (stsb, stsb_multi: 0-5; sickr: 1-5): the first sentence is drawn from one half
  of the lexicon ("world A"); the second keeps k of its n content words and replaces the
  others with words of the other half ("world B"); the score is linear in k / n.
* tagging: udpos tags follow from the word's class list (one class per word and language;
  all 17 tags occur in every file); panx entities (1-3 words, IOB2) come from name lists
  shared by all languages (zh and ar also use native-script names); ccg supertags follow
  from the word class (transitive / intransitive / ditransitive verb, modal + base form,
  determiner, adjective, ...).
* qa (squad, squad_v2, xquad, mlqa, tydiqa): a context of scene sentences (a quarter of
  them longer than 128 subword tokens) with a slot sentence "<marker> <answer>" ("The new
  manager is called Anna Berg."); the question names the marker; the answer (1-3 words)
  is a person, city, organisation or number from small inventories, and sometimes another
  slot sentence is a distractor.  squad_v2: a third of the questions ask for a slot the
  context lacks (answers []).  Chinese answers are set off by spaces so that they start
  and end on token boundaries.
* multiple choice: the correct choice continues the context's topic (kitchen, school,
  sport, travel: a word or action of the context's scene); the distractors come from the
  other topics (garden, clinic, music, office), so the correct choice is recognisable on
  its own too (measured: a tiny frozen encoder with an adapter stays at chance on pure
  context-choice agreement within 300 steps, and learns this at once).
* retrieval: parallel / relevant items share rare tokens: tatoeba and bucc2018 a person
  name (unique in the corpus), a number and a city; lareqa the name and the number; mewslix
  the entity's name, its city and a year.
* text/<lang>.txt: raw scene sentences for language modules (MLM).

Pure Python, driven by ``random.Random`` with fixed seeds; importing has no side effects.
``python adapterxl/resources/make_samples.py [ROOT]`` regenerates everything (``write_all``).
A build tool of the bundled samples, like ``make_tokenizer.py`` beside it: nothing in the
adapterxl package imports it.
"""
from __future__ import annotations

import importlib.util
import json
import random
import sys
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple


def _sibling(name: str):
    """Load ``<name>.py`` from this folder by path: the build tools are scripts, not a package
    (so that they stay out of the runtime package's imports)."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


nli = _sibling("make_nli_samples")

__all__ = [
    "TASKS",
    "LABELS",
    "UPOS_TAGS",
    "PANX_TAGS",
    "CCG_TAGS",
    "generate",
    "write_all",
    "default_samples_dir",
]

N_TRAIN = 400      # classification / tagging / multiple choice training rows
N_EVAL = 64        # validation / test rows per language
N_QA_TRAIN = 300
N_QA_EVAL = 40

LABELS: Dict[str, Tuple[str, ...]] = {
    "qqp": ("not_duplicate", "duplicate"),
    # PAWS / PAWS-X: the catalogue's label names are the Hub's ClassLabel names, "1" meaning
    # paraphrase (XTREME writes 0/1 predictions).
    "paws": ("0", "1"),
    "pawsx": ("0", "1"),
    "anli_plus": nli.LABELS,
}
UPOS_TAGS: Tuple[str, ...] = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
                              "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")
PANX_TAGS: Tuple[str, ...] = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")
CCG_TAGS: Tuple[str, ...] = (
    "N", "NP", "NP/N", "N/N", "(S[dcl]\\NP)/NP", "S[dcl]\\NP", "((S[dcl]\\NP)/PP)/NP", "PP/NP",
    "((S\\NP)\\(S\\NP))/NP", "(S\\NP)\\(S\\NP)", "(S[dcl]\\NP)/(S[b]\\NP)", "(S[b]\\NP)/NP",
    "S[b]\\NP", "conj", ".", ",")

Row = Dict[str, object]


def _rng(*key: object) -> random.Random:
    """A generator seeded from a stable string key (crc32, not Python's salted hash)."""
    return random.Random(zlib.crc32("/".join(map(str, key)).encode("utf-8")))


def _balanced(rng: random.Random, n: int, k: int) -> List[int]:
    labels = [i % k for i in range(n)]
    rng.shuffle(labels)
    return labels


def _join(lang: str, sentences: Sequence[str]) -> str:
    return ("" if lang == "zh" else " ").join(sentences)


def _lower_first(s: str) -> str:
    return s[:1].lower() + s[1:]


def _scene_sentence(rng: random.Random, lang: str, scene=None) -> str:
    """A full scene sentence in ``lang`` from the NLI realisers."""
    sc = scene if scene is not None else nli._sample_scene(rng)
    return nli._REALISERS[lang](rng, sc, nli.ENTAILMENT)[0]


# ---------------------------------------------------------------------------
# Shared name lists (the same Latin-script names in every language; zh and ar also
# use a few native-script ones).
# ---------------------------------------------------------------------------

FIRST_NAMES = ("Anna", "Omar", "Wanjiru", "José", "Mei", "Lukas", "Amina", "Pierre", "Sofia",
               "Kofi", "Layla", "Hans", "Lucía", "Chen", "Fatima", "Élodie", "Juma", "Ingrid",
               "Carlos", "Yusuf", "Nadia", "Björn", "Zoë", "Tariq", "Akosua", "Marta", "Ravi",
               "Inès", "Pablo", "Hamza", "Grace", "Emil")
LAST_NAMES = ("Berg", "Haddad", "Otieno", "Núñez", "Lin", "Keller", "Diallo", "Moreau", "Rossi",
              "Mensah", "Nasser", "Schmidt", "García", "Wang", "Khalil", "Dubois", "Mwangi",
              "Larsen", "Ortega", "Demir", "Kamau", "Fischer", "Suárez", "Bakr")
CITIES = ("Nairobi", "Mombasa", "Lyon", "Sevilla", "Hamburg", "Cairo", "Tunis", "Dakar", "Quito",
          "Oslo", "Porto", "Kyoto", "Lima", "Accra", "Zürich", "Málaga", "Kampala", "Arusha",
          "Port Louis", "Kuala Lumpur", "Buenos Aires", "Bandar Seri Begawan")
ORG_STEMS = ("Zentor", "Kalima", "Orbis", "Meridian", "Tamu", "Vertex", "Helio", "Sahel",
             "Atlas", "Nimbus", "Koru", "Baraka")
ORG_SUFFIXES = ("Bank", "Group", "Telecom", "Airways", "Motors", "Media", "Foundation")
ORG_SUFFIXES2 = ("Holdings", "International", "Partners")

NATIVE = {
    "zh": {"PER": ("王芳", "李明", "张伟", "刘洋", "陈静"),
           "LOC": ("北京", "上海", "广州", "成都"),
           "ORG": (("华星", "银行"), ("东方", "电信"), ("长城", "汽车"))},
    "ar": {"PER": (("محمد", "علي"), ("فاطمة", "حسن"), ("ليلى",), ("يوسف", "كريم")),
           "LOC": (("القاهرة",), ("دمشق",), ("بيروت",), ("الدار", "البيضاء")),
           "ORG": (("بنك", "الأمل"), ("مجموعة", "النور"), ("شركة", "الفجر"))},
}


def _words(x) -> Tuple[str, ...]:
    return (x,) if isinstance(x, str) else tuple(x)


def _entity(rng: random.Random, kind: str, lang: str = "en", n_words: Optional[int] = None
            ) -> Tuple[str, ...]:
    """An entity of ``kind`` (PER, ORG, LOC) as a tuple of 1-3 words."""
    if lang in NATIVE and rng.random() < 0.35:
        return _words(rng.choice(NATIVE[lang][kind]))
    if kind == "PER":
        n = n_words or rng.choice((1, 2, 2, 2, 3))
        words = [rng.choice(FIRST_NAMES)]
        if n >= 2:
            words += rng.sample(LAST_NAMES, n - 1)
        return tuple(words)
    if kind == "ORG":
        n = n_words or rng.choice((1, 2, 2, 3))
        words = [rng.choice(ORG_STEMS)]
        if n >= 2:
            words.append(rng.choice(ORG_SUFFIXES))
        if n >= 3:
            words.append(rng.choice(ORG_SUFFIXES2))
        return tuple(words)
    if kind == "LOC":
        return tuple(rng.choice(CITIES).split())
    raise ValueError(kind)


def _entity_text(lang: str, words: Sequence[str]) -> str:
    if lang == "zh" and all(_cjk(w) for w in words):
        return "".join(words)
    return " ".join(words)


def _cjk(s: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in s)


class _Unique:
    """Draws values without repetition (names, numbers) for one retrieval corpus: a full
    name is never repeated, and first and last names are only reused once all are used."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.names: set = set()
        self.numbers: set = set()
        self.unused = {"first": list(FIRST_NAMES), "last": list(LAST_NAMES)}

    def _part(self, key: str) -> str:
        if not self.unused[key]:
            self.unused[key] = list(FIRST_NAMES if key == "first" else LAST_NAMES)
        return self.unused[key].pop(self.rng.randrange(len(self.unused[key])))

    def name(self) -> str:
        while True:
            n = f"{self._part('first')} {self._part('last')}"
            if n not in self.names:
                self.names.add(n)
                return n

    def number(self, lo: int = 10, hi: int = 9999) -> int:
        while True:
            k = self.rng.randint(lo, hi)
            if k not in self.numbers:
                self.numbers.add(k)
                return k


# ---------------------------------------------------------------------------
# Pair classification: qqp (en questions), paws (en), pawsx (en de fr es zh)
# ---------------------------------------------------------------------------

RESTATEMENT = {
    "en": ("In other words,", "That is to say,"),
    "de": ("Mit anderen Worten,", "Das heißt,"),
    "fr": ("Autrement dit,", "C'est-à-dire que"),
    "es": ("Es decir,", "Dicho de otro modo,"),
    "zh": ("换句话说，", "也就是说，"),
}


def _swap_scene(rng: random.Random, sc):
    """The scene with its subject or its object replaced by another one from the lexicon."""
    objs = [o for o in nli.VERBS[sc.verb][0] if o != sc.obj]
    if objs and rng.random() < 0.5:
        obj = rng.choice(objs)
        obj_adj = sc.obj_adj if sc.obj_adj and nli.OBJECTS[obj] in nli.OBJECT_ADJS[sc.obj_adj] \
            else None
        return nli._Scene(sc.subj, sc.verb, obj, sc.subj_adj, obj_adj, sc.place, sc.time)
    animal_ok = nli.VERBS[sc.verb][1]
    subjs = [s for s in nli.SUBJECTS if s != sc.subj and (animal_ok or s not in nli.ANIMALS)]
    return nli._Scene(rng.choice(subjs), sc.verb, sc.obj, sc.subj_adj, sc.obj_adj, sc.place,
                      sc.time)


def _paws_rows(rng: random.Random, lang: str, n: int) -> List[Row]:
    rows = []
    for label in _balanced(rng, n, 2):
        sc = nli._sample_scene(rng)
        first = _scene_sentence(rng, lang, sc)
        if label == 1:
            marker = rng.choice(RESTATEMENT[lang])
            second = marker + first if lang == "zh" else f"{marker} {_lower_first(first)}"
        else:
            second = _scene_sentence(rng, lang, _swap_scene(rng, sc))
        rows.append({"text": [first, second], "label": LABELS["paws"][label]})
    return rows


# Base question templates (q1, and q2 of non-duplicates) and rephrasings (q2 of duplicates):
# "What is the <reason> ..." or "Can someone tell me <why> ...", words no base template has.
_QQP_BASE = {
    "how": "How does the {s} {vb} the {o}{p}?",
    "where": "Where does the {s} {vb} the {o}{p}?",
    "why": "Why does the {s} {vb} the {o}{p}?",
    "when": "When does the {s} {vb} the {o}{p}?",
}
_QQP_REPHRASE = {
    "how": ("What is the way the {s} {v3} the {o}{p}?",
            "Can someone tell me how the {s} {v3} the {o}{p}?"),
    "where": ("What is the place where the {s} {v3} the {o}{p}?",
              "Can someone tell me where the {s} {v3} the {o}{p}?"),
    "why": ("What is the reason the {s} {v3} the {o}{p}?",
            "Can someone tell me why the {s} {v3} the {o}{p}?"),
    "when": ("What is the time when the {s} {v3} the {o}{p}?",
             "Can someone tell me when the {s} {v3} the {o}{p}?"),
}


def _qqp_fill(template: str, sc, place: bool) -> str:
    L = nli._EN
    v3, vb = L["verb"][sc.verb]
    where = " " + L["place"][sc.place] if place and sc.place else ""
    return template.format(s=L["subj"][sc.subj], vb=vb, v3=v3, o=L["obj"][sc.obj], p=where)


def _qqp_rows(rng: random.Random, lang: str, n: int) -> List[Row]:
    # Mostly short questions (no adjectives; a place in a quarter of them): the rephrasing
    # words weigh more in a mean-pooled encoding (measured: dev accuracy 0.67-0.94 across
    # seeds with longer questions, 0.98-1.0 with these).
    rows = []
    for label in _balanced(rng, n, 2):
        sc = nli._sample_scene(rng)
        place = rng.random() < 0.25
        intent = rng.choice(sorted(_QQP_BASE))
        q1 = _qqp_fill(_QQP_BASE[intent], sc, place)
        if label == 1:
            q2 = _qqp_fill(rng.choice(_QQP_REPHRASE[intent]), sc, place)
        elif rng.random() < 0.5:
            q2 = _qqp_fill(_QQP_BASE[intent], _swap_scene(rng, sc), place)
        else:
            other = rng.choice([i for i in sorted(_QQP_BASE) if i != intent])
            q2 = _qqp_fill(_QQP_BASE[other], sc, place)
        rows.append({"text": [q1, q2], "label": LABELS["qqp"][label]})
    return rows


def _anli_rows(rng: random.Random, lang: str, n: int) -> List[Row]:
    seed = rng.randrange(1 << 30)
    return [{"text": [ex["premise"], ex["hypothesis"]], "label": nli.LABELS[ex["label"]]}
            for ex in nli.nli_examples(n, lang, seed)]


# ---------------------------------------------------------------------------
# Regression: stsb, sickr (en), stsb_multi (en de fr es zh)
# ---------------------------------------------------------------------------

# Small worlds: a linear head over a random encoder's 64-d token vectors tells a dozen
# world-B words from the rest far better than forty (measured: Pearson about 0.86 instead
# of 0.7 after 200 steps).
_WORLD_A = {"subj": ("teacher", "student", "doctor"), "verb": ("read", "buy", "see"),
            "obj": ("book", "newspaper", "letter"), "place": ("school",), "time": ("morning",),
            "subj_adj": ("young",), "obj_adj": ("new", "red")}
_WORLD_B = {"subj": ("farmer", "driver", "dog"), "verb": ("take", "sell", "find"),
            "obj": ("car", "ball", "apple", "bread"), "place": ("park",), "time": ("evening",),
            "subj_adj": ("tired",), "obj_adj": ("small",)}
_SLOTS = ("subj", "verb", "obj", "subj_adj", "obj_adj", "place", "time")


def _valid_scene(d: Dict[str, Optional[str]]) -> bool:
    allowed, animal_ok = nli.VERBS[d["verb"]]
    if d["obj"] not in allowed or (d["subj"] in nli.ANIMALS and not animal_ok):
        return False
    return not d["obj_adj"] or nli.OBJECTS[d["obj"]] in nli.OBJECT_ADJS[d["obj_adj"]]


def _sts_pair(rng: random.Random):
    """(scene A, scene with k of its n slots replaced from world B, k, n)."""
    while True:
        d = {k: rng.choice(_WORLD_A[k]) for k in ("subj", "verb", "obj")}
        for k, p in (("subj_adj", 0.4), ("obj_adj", 0.4), ("place", 0.5), ("time", 0.4)):
            d[k] = rng.choice(_WORLD_A[k]) if rng.random() < p else None
        if _valid_scene(d):
            break
    present = [k for k in _SLOTS if d[k]]
    while True:
        k = rng.randint(0, len(present))
        changed = rng.sample(present, k)
        for _ in range(30):
            e = dict(d)
            for slot in changed:
                e[slot] = rng.choice(_WORLD_B[slot])
            if _valid_scene(e):
                return (nli._Scene(**d), nli._Scene(**e), k, len(present))


def _sts_rows(rng: random.Random, lang: str, n: int, lo: float = 0.0) -> List[Row]:
    rows = []
    for _ in range(n):
        a, b, k, total = _sts_pair(rng)
        score = lo + (5.0 - lo) * (total - k) / total
        rows.append({"text": [_scene_sentence(rng, lang, a), _scene_sentence(rng, lang, b)],
                     "label": round(score, 2)})
    return rows


def _sick_rows(rng: random.Random, lang: str, n: int) -> List[Row]:
    return _sts_rows(rng, lang, n, lo=1.0)


# ---------------------------------------------------------------------------
# Tagging: udpos (en de fr es zh ar)
# ---------------------------------------------------------------------------

Tagged = List[Tuple[str, str]]

_POS_FUNC = {
    "en": {"INTJ": ("oh", "wow", "yes", "hey"), "PRON": ("he", "she"),
           "AUX": ("will", "can"), "PART": ("not",),
           "ADV": ("quickly", "often", "slowly", "again"),
           "CCONJ": ("and", "but", "or"), "SCONJ": ("because", "when", "if", "although"),
           "X": ("etc",), "DET": ("the", "this"), "PRICE": ("for",)},
    "de": {"INTJ": ("oh", "ja", "ach"), "PRON": ("er", "sie"), "AUX": ("wird", "kann"),
           "PART": ("nicht",), "ADV": ("schnell", "oft", "langsam", "wieder"),
           "CCONJ": ("und", "aber", "oder"), "SCONJ": ("weil", "wenn", "obwohl", "dass"),
           "X": ("usw",), "PRICE": ("für",)},
    "fr": {"INTJ": ("oh", "ah", "oui"), "PRON": ("il", "elle"), "AUX": ("va", "peut"),
           "ADV": ("souvent", "vite", "encore", "lentement"),
           "CCONJ": ("et", "mais", "ou"), "SCONJ": ("quand", "comme"),
           "X": ("etc",), "PRICE": ("pour",)},
    "es": {"INTJ": ("oh", "ay", "sí"), "PRON": ("él", "ella"), "AUX": ("puede", "debe"),
           "PART": ("no",), "ADV": ("rápidamente", "siempre", "despacio", "también"),
           "CCONJ": ("y", "pero", "o"), "SCONJ": ("porque", "cuando", "si", "aunque"),
           "X": ("etc",), "PRICE": ("por",)},
    "zh": {"INTJ": ("哦", "啊", "嗯"), "PRON": ("他", "她"), "AUX": ("会", "能", "要"),
           "PART": ("不", "没有"), "ADV": ("常常", "也", "又", "慢慢"),
           "CCONJ": ("和", "但是", "或者"), "SCONJ": ("因为", "如果", "虽然"),
           "X": ("等等",), "DET": ("这", "那"), "PRICE": ("用",)},
    "ar": {"INTJ": ("آه", "نعم", "أوه"), "PRON": ("هو", "هي"), "PART": ("لا",),
           "ADV": ("دائما", "أيضا", "سريعا", "غالبا"),
           "CCONJ": ("و", "لكن", "أو"), "SCONJ": ("لأن", "عندما", "إذا"),
           "X": ("إلخ",), "PRICE": ("مقابل",)},
}
_SYMBOLS = ("$", "€", "%")

_DE_INF = {"read": "lesen", "eat": "essen", "drink": "trinken", "buy": "kaufen",
           "write": "schreiben", "wash": "waschen", "make": "kochen", "take": "nehmen",
           "find": "finden", "sell": "verkaufen", "like": "mögen", "see": "sehen"}
_FR_INF = {"read": "lire", "eat": "manger", "drink": "boire", "buy": "acheter",
           "write": "écrire", "wash": "laver", "make": "préparer", "take": "prendre",
           "find": "trouver", "sell": "vendre", "like": "aimer", "see": "voir"}
_ES_INF = {"read": "leer", "eat": "comer", "drink": "beber", "buy": "comprar",
           "write": "escribir", "wash": "lavar", "make": "preparar", "take": "tomar",
           "find": "encontrar", "sell": "vender", "like": "querer", "see": "ver"}

# Place phrases as tagged words.
_POS_PLACE = {
    "en": {"garden": "in/ADP the/DET garden/NOUN", "school": "at/ADP school/NOUN",
           "home": "at/ADP home/NOUN", "market": "at/ADP the/DET market/NOUN",
           "park": "in/ADP the/DET park/NOUN"},
    "de": {"garden": "im/ADP Garten/NOUN", "school": "in/ADP der/DET Schule/NOUN",
           "home": "zu/ADP Hause/NOUN", "market": "auf/ADP dem/DET Markt/NOUN",
           "park": "im/ADP Park/NOUN"},
    "fr": {"garden": "dans/ADP le/DET jardin/NOUN", "school": "à/ADP l'/DET école/NOUN",
           "home": "à/ADP la/DET maison/NOUN", "market": "au/ADP marché/NOUN",
           "park": "dans/ADP le/DET parc/NOUN"},
    "es": {"garden": "en/ADP el/DET jardín/NOUN", "school": "en/ADP la/DET escuela/NOUN",
           "home": "en/ADP casa/NOUN", "market": "en/ADP el/DET mercado/NOUN",
           "park": "en/ADP el/DET parque/NOUN"},
    "zh": {"garden": "在/ADP 花园/NOUN 里/ADP", "school": "在/ADP 学校/NOUN",
           "home": "在/ADP 家/NOUN 里/ADP", "market": "在/ADP 市场/NOUN 上/ADP",
           "park": "在/ADP 公园/NOUN 里/ADP"},
    "ar": {k: " ".join(f"{w}/{t}" for w, t in zip(v.split(), ("ADP", "NOUN")))
           for k, v in nli._AR["place"].items()},
}


def _tw(spec: str) -> Tagged:
    return [tuple(x.rsplit("/", 1)) for x in spec.split()]


def _maybe(rng: random.Random, p: float) -> bool:
    return rng.random() < p


def _propn(rng: random.Random, lang: str) -> Tagged:
    return [(w, "PROPN") for w in _entity(rng, "PER", lang, n_words=rng.choice((1, 2)))]


def _price(rng: random.Random, lang: str) -> Tagged:
    num = (str(rng.randint(2, 99)), "NUM")
    sym = (rng.choice(_SYMBOLS), "SYM")
    return [(_POS_FUNC[lang]["PRICE"][0], "ADP")] + ([sym, num] if lang == "en" else [num, sym])


def _subject(rng: random.Random, lang: str, np: Callable[[], Tagged]) -> Tagged:
    r = rng.random()
    if r < 0.2:
        return [(rng.choice(_POS_FUNC[lang]["PRON"]), "PRON")]
    if r < 0.4:
        return _propn(rng, lang)
    return np()


def _coord_obj(rng: random.Random, lang: str, first: Tagged, np2: Callable[[], Tagged]
               ) -> Tagged:
    """``first`` or, sometimes, "first and second etc"."""
    if _maybe(rng, 0.12):
        return first + [(_POS_FUNC[lang]["CCONJ"][0], "CCONJ")] + np2() + \
            [(_POS_FUNC[lang]["X"][0], "X")]
    return first


def _en_clause(rng: random.Random, main: bool) -> Tagged:
    L, F = nli._EN, _POS_FUNC["en"]
    sc = nli._sample_scene(rng)

    def np(noun, adj):
        return [(rng.choice(F["DET"]), "DET")] + ([(L["adj"][adj], "ADJ")] if adj else []) + \
            [(noun, "NOUN")]

    other = nli._sample_scene(rng)
    out = _subject(rng, "en", lambda: np(L["subj"][sc.subj], sc.subj_adj))
    v3, vb = L["verb"][sc.verb]
    m = rng.random()
    if m < 0.2:
        out += [(rng.choice(F["AUX"]), "AUX"), (vb, "VERB")]
    elif m < 0.35:
        out += [("does", "AUX"), ("not", "PART"), (vb, "VERB")]
    else:
        if _maybe(rng, 0.15):
            out.append((rng.choice(F["ADV"]), "ADV"))
        out.append((v3, "VERB"))
    obj = np(L["obj"][sc.obj], sc.obj_adj)
    out += _coord_obj(rng, "en", obj, lambda: np(L["obj"][other.obj], None)) if main else obj
    if sc.place:
        out += _tw(_POS_PLACE["en"][sc.place])
    if _maybe(rng, 0.15):
        out.append((rng.choice(F["ADV"]), "ADV"))
    if main and _maybe(rng, 0.12):
        out += _price(rng, "en")
    return out


def _de_clause(rng: random.Random, main: bool, coord: bool = False) -> Tagged:
    L, F = nli._DE, _POS_FUNC["de"]
    sc, other = nli._sample_scene(rng), nli._sample_scene(rng)

    def np(noun_g, adj, case):
        noun, g = noun_g
        adj_w = [(nli._de_adj(L["adj"][adj], case, g), "ADJ")] if adj else []
        return [(nli._DE_ART[(case, g)], "DET")] + adj_w + [(noun, "NOUN")]

    subj = _subject(rng, "de", lambda: np(L["subj"][sc.subj], sc.subj_adj, "nom"))
    obj = np(L["obj"][sc.obj], sc.obj_adj, "acc")
    if main:
        obj = _coord_obj(rng, "de", obj, lambda: np(L["obj"][other.obj], None, "acc"))
    place = _tw(_POS_PLACE["de"][sc.place]) if sc.place else []
    adv = [(rng.choice(F["ADV"]), "ADV")] if _maybe(rng, 0.25) else []
    neg = [("nicht", "PART")] if _maybe(rng, 0.15) else []
    aux = [(rng.choice(F["AUX"]), "AUX")] if _maybe(rng, 0.25) else []
    verb = [(L["verb"][sc.verb], "VERB")]
    inf = [(_DE_INF[sc.verb], "VERB")]
    price = _price(rng, "de") if main and _maybe(rng, 0.12) else []
    if main or coord:  # verb second; with an auxiliary the infinitive goes last
        if aux:
            return subj + aux + adv + obj + place + price + neg + inf
        return subj + verb + adv + obj + place + price + neg
    # subordinate clause: verb last
    if aux:
        return subj + adv + obj + place + neg + inf + aux
    return subj + adv + obj + place + neg + verb


def _fr_np(rng, noun_g, adj) -> Tagged:
    noun, g = noun_g
    if noun[0] in nli._VOWELS:
        out = [("l'", "DET"), (noun, "NOUN")]
    else:
        out = [("le" if g == "m" else "la", "DET"), (noun, "NOUN")]
    if adj:
        out.append((nli._FR["adj"][adj][0 if g == "m" else 1], "ADJ"))
    return out


def _fr_clause(rng: random.Random, main: bool) -> Tagged:
    L, F = nli._FR, _POS_FUNC["fr"]
    sc, other = nli._sample_scene(rng), nli._sample_scene(rng)
    subj = _subject(rng, "fr", lambda: _fr_np(rng, L["subj"][sc.subj], sc.subj_adj))
    obj = _fr_np(rng, L["obj"][sc.obj], sc.obj_adj)
    if main:
        obj = _coord_obj(rng, "fr", obj, lambda: _fr_np(rng, L["obj"][other.obj], None))
    m = rng.random()
    if m < 0.25:
        head = (rng.choice(F["AUX"]), "AUX")
        rest = [(_FR_INF[sc.verb], "VERB")]
    else:
        head = (L["verb"][sc.verb], "VERB")
        rest = []
    if _maybe(rng, 0.2):
        ne = "n'" if head[0][0] in nli._VOWELS else "ne"
        verb = [(ne, "PART"), head, ("pas", "PART")] + rest
    else:
        verb = [head] + rest
    if _maybe(rng, 0.2):
        verb.insert(len(verb) - len(rest), (rng.choice(F["ADV"]), "ADV"))
    out = subj + verb + obj
    if sc.place:
        out += _tw(_POS_PLACE["fr"][sc.place])
    if main and _maybe(rng, 0.12):
        out += _price(rng, "fr")
    return out


def _es_np(noun_ga, adj) -> Tagged:
    noun, g, art = noun_ga
    out = [(art, "DET"), (noun, "NOUN")]
    if adj:
        out.append((nli._ES["adj"][adj][0 if g == "m" else 1], "ADJ"))
    return out


def _es_clause(rng: random.Random, main: bool) -> Tagged:
    L, F = nli._ES, _POS_FUNC["es"]
    sc, other = nli._sample_scene(rng), nli._sample_scene(rng)
    subj = _subject(rng, "es", lambda: _es_np(L["subj"][sc.subj], sc.subj_adj))
    obj = _es_np(L["obj"][sc.obj], sc.obj_adj)
    if main:
        obj = _coord_obj(rng, "es", obj, lambda: _es_np(L["obj"][other.obj], None))
    verb: Tagged = [("no", "PART")] if _maybe(rng, 0.2) else []
    if _maybe(rng, 0.25):
        verb += [(rng.choice(F["AUX"]), "AUX"), (_ES_INF[sc.verb], "VERB")]
    else:
        verb.append((L["verb"][sc.verb], "VERB"))
    if _maybe(rng, 0.2):
        verb.append((rng.choice(F["ADV"]), "ADV"))
    out = subj + verb + obj
    if sc.place:
        out += _tw(_POS_PLACE["es"][sc.place])
    if main and _maybe(rng, 0.12):
        out += _price(rng, "es")
    return out


def _zh_np(rng, noun, adj, det: bool) -> Tagged:
    out: Tagged = [(rng.choice(_POS_FUNC["zh"]["DET"]), "DET")] if det else []
    if adj:
        out += [(nli._ZH["adj"][adj][:-1], "ADJ"), ("的", "PART")]
    return out + [(noun, "NOUN")]


def _zh_clause(rng: random.Random, main: bool) -> Tagged:
    L, F = nli._ZH, _POS_FUNC["zh"]
    sc, other = nli._sample_scene(rng), nli._sample_scene(rng)
    subj = _subject(rng, "zh", lambda: _zh_np(rng, L["subj"][sc.subj], sc.subj_adj,
                                              _maybe(rng, 0.3)))
    obj = _zh_np(rng, L["obj"][sc.obj], sc.obj_adj, False)
    if main:
        obj = _coord_obj(rng, "zh", obj, lambda: _zh_np(rng, L["obj"][other.obj], None, False))
    out = subj
    if _maybe(rng, 0.2):
        out.append((rng.choice(F["ADV"]), "ADV"))
    if sc.place:
        out += _tw(_POS_PLACE["zh"][sc.place])
    if main and _maybe(rng, 0.12):
        out += [("用", "ADP"), (str(rng.randint(2, 99)), "NUM"), (rng.choice(_SYMBOLS), "SYM")]
    if _maybe(rng, 0.2):
        out.append((rng.choice(F["PART"]), "PART"))
    if _maybe(rng, 0.25):
        out.append((rng.choice(F["AUX"]), "AUX"))
    return out + [(L["verb"][sc.verb], "VERB")] + obj


def _ar_np(rng, noun_g, adj, det: bool) -> Tagged:
    noun, g = noun_g
    out: Tagged = [("هذا" if g == "m" else "هذه", "DET")] if det else []
    out.append((noun, "NOUN"))
    if adj:
        out.append((nli._AR["adj"][adj][0 if g == "m" else 1], "ADJ"))
    return out


def _ar_clause(rng: random.Random, main: bool) -> Tagged:
    L, F = nli._AR, _POS_FUNC["ar"]
    sc, other = nli._sample_scene(rng), nli._sample_scene(rng)
    g = L["subj"][sc.subj][1]
    subj = _subject(rng, "ar", lambda: _ar_np(rng, L["subj"][sc.subj], sc.subj_adj,
                                              _maybe(rng, 0.3)))
    if subj[0][0] == "هي":
        g = "f"
    elif subj[0][1] != "NOUN" and subj[0][1] != "DET":
        g = "m"
    verb_w = L["verb"][sc.verb]
    if g == "f":
        verb_w = "ت" + verb_w[1:]
    out = subj
    if _maybe(rng, 0.2):
        out.append(("كانت" if g == "f" else "كان", "AUX"))
    if _maybe(rng, 0.2):
        out.append(("لا", "PART"))
    out.append((verb_w, "VERB"))
    obj = _ar_np(rng, L["obj"][sc.obj], sc.obj_adj, False)
    if main:
        obj = _coord_obj(rng, "ar", obj, lambda: _ar_np(rng, L["obj"][other.obj], None, False))
    out += obj
    if sc.place:
        out += _tw(_POS_PLACE["ar"][sc.place])
    if _maybe(rng, 0.2):
        out.append((rng.choice(F["ADV"]), "ADV"))
    if main and _maybe(rng, 0.12):
        out += _price(rng, "ar")
    return out


_POS_CLAUSE = {"en": _en_clause, "de": _de_clause, "fr": _fr_clause, "es": _es_clause,
               "zh": _zh_clause, "ar": _ar_clause}
_COMMA = {"zh": "，", "ar": "،"}
_STOP = {"zh": "。"}


def _pos_sentence(rng: random.Random, lang: str) -> Tagged:
    F = _POS_FUNC[lang]
    comma = _COMMA.get(lang, ",")
    out: Tagged = []
    if _maybe(rng, 0.12):
        out += [(rng.choice(F["INTJ"]), "INTJ"), (comma, "PUNCT")]
    out += _POS_CLAUSE[lang](rng, True)
    r = rng.random()
    if r < 0.2:
        clause = _de_clause(rng, False, coord=True) if lang == "de" else \
            _POS_CLAUSE[lang](rng, False)
        out += [(rng.choice(F["CCONJ"]), "CCONJ")] + clause
    elif r < 0.4:
        if lang != "zh":
            out.append((comma, "PUNCT"))
        out += [(rng.choice(F["SCONJ"]), "SCONJ")] + _POS_CLAUSE[lang](rng, False)
    out.append((_STOP.get(lang, "."), "PUNCT"))
    if lang not in ("zh", "ar"):
        out[0] = (out[0][0][:1].upper() + out[0][0][1:], out[0][1])
    return out


def _udpos_rows(rng: random.Random, lang: str, n: int) -> List[Row]:
    rows = []
    for _ in range(n):
        tagged = _pos_sentence(rng, lang)
        rows.append({"tokens": [w for w, _ in tagged], "tags": [t for _, t in tagged]})
    return rows


# ---------------------------------------------------------------------------
# Tagging: panx (en de fr es sw zh ar), IOB2
# ---------------------------------------------------------------------------

_PANX_TEMPLATES = {
    "en": ("{P} works for {O} in {L} .", "{P} visited {L} with {P} .",
           "The office of {O} is in {L} .", "Yesterday {O} opened a new shop in {L} .",
           "{P} buys the bread at the market .", "The teacher reads the newspaper every morning .",
           "{O} sold the car to {P} .", "{P} was born in {L} .",
           "According to {P} , {O} will move to {L} ."),
    "de": ("{P} arbeitet für {O} in {L} .", "{P} besuchte {L} mit {P} .",
           "Das Büro von {O} ist in {L} .", "Gestern eröffnete {O} einen neuen Laden in {L} .",
           "{P} kauft das Brot auf dem Markt .", "Der Lehrer liest jeden Morgen die Zeitung .",
           "{O} verkaufte das Auto an {P} .", "{P} wurde in {L} geboren .",
           "Laut {P} zieht {O} nach {L} ."),
    "fr": ("{P} travaille pour {O} à {L} .", "{P} a visité {L} avec {P} .",
           "Le bureau de {O} est à {L} .", "Hier , {O} a ouvert un magasin à {L} .",
           "{P} achète le pain au marché .", "Le professeur lit le journal le matin .",
           "{O} a vendu la voiture à {P} .", "{P} est né à {L} .",
           "Selon {P} , {O} va déménager à {L} ."),
    "es": ("{P} trabaja para {O} en {L} .", "{P} visitó {L} con {P} .",
           "La oficina de {O} está en {L} .", "Ayer {O} abrió una tienda en {L} .",
           "{P} compra el pan en el mercado .", "El maestro lee el periódico por la mañana .",
           "{O} vendió el coche a {P} .", "{P} nació en {L} .",
           "Según {P} , {O} se mudará a {L} ."),
    "sw": ("{P} anafanya kazi katika {O} huko {L} .", "{P} alitembelea {L} pamoja na {P} .",
           "Ofisi ya {O} iko {L} .", "Jana {O} ilifungua duka jipya {L} .",
           "{P} ananunua mkate sokoni .", "Mwalimu anasoma gazeti kila asubuhi .",
           "{O} iliuza gari kwa {P} .", "{P} alizaliwa {L} .",
           "Kwa mujibu wa {P} , {O} itahamia {L} ."),
    "zh": ("{P} 在 {O} 工作 ， 住 在 {L} 。", "{P} 和 {P} 去 了 {L} 。", "{O} 的 办公室 在 {L} 。",
           "昨天 {O} 在 {L} 开 了 一 家 新 商店 。", "{P} 在 市场 上 买 面包 。",
           "老师 每天 早上 看 报纸 。", "{O} 把 汽车 卖 给 了 {P} 。", "{P} 出生 在 {L} 。",
           "据 {P} 说 ， {O} 将 搬 到 {L} 。"),
    "ar": ("يعمل {P} في {O} في {L} .", "زار {P} {L} مع {P} .", "مكتب {O} في {L} .",
           "افتتحت {O} أمس متجرا جديدا في {L} .", "يشتري {P} الخبز في السوق .",
           "يقرأ المعلم الجريدة كل صباح .", "باعت {O} السيارة إلى {P} .", "ولد {P} في {L} .",
           "حسب {P} ، ستنتقل {O} إلى {L} ."),
}
_SLOT_KIND = {"{P}": "PER", "{O}": "ORG", "{L}": "LOC"}


def _panx_rows(rng: random.Random, lang: str, n: int) -> List[Row]:
    rows = []
    for _ in range(n):
        tokens, tags = [], []
        for w in rng.choice(_PANX_TEMPLATES[lang]).split():
            kind = _SLOT_KIND.get(w)
            if kind is None:
                tokens.append(w)
                tags.append("O")
                continue
            for i, word in enumerate(_entity(rng, kind, lang)):
                tokens.append(word)
                tags.append(("B-" if i == 0 else "I-") + kind)
        rows.append({"tokens": tokens, "tags": tags})
    return rows


# ---------------------------------------------------------------------------
# Tagging: ccg (en)
# ---------------------------------------------------------------------------

_CCG = {
    "det": "NP/N", "adj": "N/N", "noun": "N", "pron": "NP", "first": "N/N", "last": "N",
    "tv": "(S[dcl]\\NP)/NP", "iv": "S[dcl]\\NP", "dtv": "((S[dcl]\\NP)/PP)/NP", "to": "PP/NP",
    "vpmod_p": "((S\\NP)\\(S\\NP))/NP", "adv": "(S\\NP)\\(S\\NP)",
    "modal": "(S[dcl]\\NP)/(S[b]\\NP)", "tv_b": "(S[b]\\NP)/NP", "iv_b": "S[b]\\NP",
    "conj": "conj", ".": ".", ",": ",",
}
_CCG_IV = {"sleeps": "sleep", "waits": "wait", "sings": "sing", "laughs": "laugh",
           "runs": "run", "smiles": "smile"}
_CCG_DTV = ("gives", "sends", "shows", "hands")
_CCG_PREP = ("in", "at", "near", "behind")
_CCG_PLACES = ("garden", "school", "market", "park", "station")


def _ccg_sentence(rng: random.Random) -> Tagged:
    L = nli._EN
    sc = nli._sample_scene(rng)

    def np(noun: str, adj: Optional[str]) -> Tagged:
        return [("the", _CCG["det"])] + ([(L["adj"][adj], _CCG["adj"])] if adj else []) + \
            [(noun, _CCG["noun"])]

    def subj() -> Tagged:
        r = rng.random()
        if r < 0.2:
            return [(rng.choice(("he", "she")), _CCG["pron"])]
        if r < 0.4:
            return [(rng.choice(FIRST_NAMES), _CCG["first"]), (rng.choice(LAST_NAMES), _CCG["last"])]
        return np(L["subj"][sc.subj], sc.subj_adj)

    def vp() -> Tagged:
        r = rng.random()
        v3, vb = L["verb"][sc.verb]
        obj = np(L["obj"][sc.obj], sc.obj_adj)
        if r < 0.2:
            iv = rng.choice(sorted(_CCG_IV))
            out = [(iv, _CCG["iv"])]
        elif r < 0.35:
            iv = rng.choice(sorted(_CCG_IV))
            out = [("will", _CCG["modal"]), (_CCG_IV[iv], _CCG["iv_b"])]
        elif r < 0.5:
            out = [("will", _CCG["modal"]), (vb, _CCG["tv_b"])] + obj
        elif r < 0.65:
            out = [(rng.choice(_CCG_DTV), _CCG["dtv"])] + obj + [("to", _CCG["to"])] + \
                [(rng.choice(FIRST_NAMES), _CCG["first"]), (rng.choice(LAST_NAMES), _CCG["last"])]
        else:
            out = [(v3, _CCG["tv"])] + obj
        if _maybe(rng, 0.3):
            out += [(rng.choice(_CCG_PREP), _CCG["vpmod_p"])] + np(rng.choice(_CCG_PLACES), None)
        if _maybe(rng, 0.2):
            out.append((rng.choice(("quickly", "slowly", "again")), _CCG["adv"]))
        return out

    out = subj() + vp()
    if _maybe(rng, 0.2):
        sc = nli._sample_scene(rng)
        out += [(",", _CCG[","]), ("and", _CCG["conj"])] + subj() + vp()
    out.append((".", _CCG["."]))
    out[0] = (out[0][0][:1].upper() + out[0][0][1:], out[0][1])
    return out


def _ccg_rows(rng: random.Random, lang: str, n: int) -> List[Row]:
    rows = []
    for _ in range(n):
        tagged = _ccg_sentence(rng)
        rows.append({"tokens": [w for w, _ in tagged], "tags": [t for _, t in tagged]})
    return rows


# ---------------------------------------------------------------------------
# QA: squad, squad_v2 (en), xquad / mlqa (en de es zh ar), tydiqa (en ar sw)
# ---------------------------------------------------------------------------

# slot -> (context sentence with {A}, question naming the sentence's marker)
QA_SLOTS = {
    "en": {"PER": ("The new manager is called {A}.", "What is the new manager called?"),
           "LOC": ("The parcel was sent to {A}.", "Where was the parcel sent to?"),
           "NUM": ("The ticket costs {A} coins.", "How many coins does the ticket cost?"),
           "ORG": ("The driver works for {A}.", "Who does the driver work for?")},
    "de": {"PER": ("Die neue Chefin heißt {A}.", "Wie heißt die neue Chefin?"),
           "LOC": ("Das Paket wurde geschickt nach {A}.", "Wohin wurde das Paket geschickt?"),
           "NUM": ("Die Fahrkarte kostet {A} Münzen.", "Wie viele Münzen kostet die Fahrkarte?"),
           "ORG": ("Der Fahrer arbeitet für {A}.", "Für wen arbeitet der Fahrer?")},
    "es": {"PER": ("La nueva jefa se llama {A}.", "¿Cómo se llama la nueva jefa?"),
           "LOC": ("El paquete fue enviado a {A}.", "¿A dónde fue enviado el paquete?"),
           "NUM": ("El billete cuesta {A} monedas.", "¿Cuántas monedas cuesta el billete?"),
           "ORG": ("El conductor trabaja para {A}.", "¿Para quién trabaja el conductor?")},
    # Chinese: the answer is set off by spaces (as Latin names and numbers often are in
    # Chinese text), so that it starts and ends on a token boundary.
    "zh": {"PER": ("新经理名叫 {A} 。", "新经理名叫什么？"),
           "LOC": ("包裹寄到了 {A} 。", "包裹寄到了哪里？"),
           "NUM": ("车票要 {A} 个硬币。", "车票要多少个硬币？"),
           "ORG": ("司机工作的公司是 {A} 。", "司机工作的公司是哪家？")},
    "ar": {"PER": ("اسم المدير الجديد {A}.", "ما اسم المدير الجديد؟"),
           "LOC": ("أرسل الطرد إلى {A}.", "إلى أين أرسل الطرد؟"),
           "NUM": ("ثمن التذكرة {A} قطعة نقدية.", "كم قطعة نقدية ثمن التذكرة؟"),
           "ORG": ("يعمل السائق لدى {A}.", "لدى من يعمل السائق؟")},
    "sw": {"PER": ("Meneja mpya anaitwa {A}.", "Meneja mpya anaitwa nani?"),
           "LOC": ("Kifurushi kilitumwa hadi {A}.", "Kifurushi kilitumwa hadi wapi?"),
           "NUM": ("Tiketi inagharimu sarafu {A}.", "Tiketi inagharimu sarafu ngapi?"),
           "ORG": ("Dereva anafanya kazi kwa {A}.", "Dereva anafanya kazi kwa nani?")},
}
_QA_KINDS = ("PER", "LOC", "NUM", "ORG")


# Answers come from small inventories (and the filler sentences from a small part of the
# lexicon, see _qa_scene): a frozen random encoder's tokens are arbitrary 64-d vectors, and
# a linear span head separates a few dozen answer tokens from a few dozen filler words far
# more easily than a hundred from a hundred (measured with the training code, 200 steps:
# F1 0.43-0.50 across seeds, against 0.1-0.3 with all names and the whole lexicon).
QA_POOLS = {"first": ("Anna", "Omar", "José", "Amina", "Élodie", "Kofi", "Zoë", "Björn"),
            "last": ("Berg", "Otieno", "Núñez", "Keller", "García", "Moreau"),
            "loc": ("Nairobi", "Lyon", "Málaga", "Zürich", "Port Louis", "Buenos Aires"),
            "org": ORG_STEMS[:4], "suffix": ORG_SUFFIXES[:3],
            "num": ("5", "12", "25", "40", "100", "300")}


def _qa_answer(rng: random.Random, kind: str, lang: str) -> str:
    P = QA_POOLS
    if kind == "NUM":
        return rng.choice(P["num"])
    if lang in NATIVE and rng.random() < 0.35:
        return _entity_text(lang, _words(rng.choice(NATIVE[lang][kind])))
    if kind == "PER":
        words = [rng.choice(P["first"])] + rng.sample(P["last"], rng.choice((0, 1, 1, 2)))
    elif kind == "ORG":
        words = [rng.choice(P["org"])] + ([rng.choice(P["suffix"])] if rng.random() < 0.7 else [])
    else:
        words = [rng.choice(P["loc"])]
    return " ".join(words)


_QA_SUBJECTS = ("teacher", "mother", "driver", "farmer", "child")
_QA_VERBS = ("buy", "take", "sell", "like")


def _qa_scene(rng: random.Random):
    """A plain scene from a small part of the lexicon (no adjectives): with few filler words
    around them, a linear span head over random token vectors finds the answers."""
    obj = rng.choice(("book", "bread", "tea", "car", "bag", "apple"))
    place = rng.choice(nli.PLACES) if rng.random() < 0.5 else None
    time = rng.choice(nli.TIMES) if rng.random() < 0.3 else None
    return nli._Scene(rng.choice(_QA_SUBJECTS), rng.choice(_QA_VERBS), obj, None, None, place,
                      time)


def _qa_rows(rng: random.Random, lang: str, n: int, prefix: str, unanswerable: float = 0.0
             ) -> List[Row]:
    slots = QA_SLOTS[lang]
    sep = "" if lang == "zh" else " "
    flags = [i < round(n * unanswerable) for i in range(n)]
    rng.shuffle(flags)
    rows = []
    for i, no_answer in enumerate(flags):
        long_ctx = rng.random() < 0.25  # mostly longer than 128 subword tokens
        n_sent = rng.randint(13, 19) if long_ctx else rng.randint(2, 5)
        sents = [_scene_sentence(rng, lang, _qa_scene(rng)) for _ in range(n_sent)]
        kind = rng.choice(_QA_KINDS)
        others = [k for k in _QA_KINDS if k != kind]
        answer = None
        inserts: List[Tuple[str, Optional[str]]] = []  # (slot sentence, answer or None)
        if not no_answer:
            answer = _qa_answer(rng, kind, lang)
            inserts.append((slots[kind][0], answer))
            if rng.random() < 0.15:  # a distractor slot of another kind
                inserts.append((slots[rng.choice(others)][0], None))
        elif rng.random() < 0.5:
            inserts.append((slots[rng.choice(others)][0], None))
        items: List[Tuple[str, Optional[str]]] = [(s, None) for s in sents]
        for template, ans in inserts:
            items.insert(rng.randint(0, len(items)), (template, ans))
        context, start = "", -1
        for j, (s, ans) in enumerate(items):
            if j:
                context += sep
            if "{A}" in s:
                filler = ans if ans is not None else _qa_answer(rng, _kind_of(slots, s), lang)
                if ans is not None:
                    start = len(context) + s.index("{A}")
                s = s.replace("{A}", filler)
            context += s
        answers = [] if no_answer else [{"text": answer, "start": start}]
        if answers and context[start:start + len(answer)] != answer:
            raise AssertionError(f"bad answer offset in {prefix}-{i}")
        rows.append({"id": f"{prefix}-{i:04d}", "question": slots[kind][1], "context": context,
                     "answers": answers})
    return rows


def _kind_of(slots, template: str) -> str:
    return next(k for k, (t, _) in slots.items() if t == template)


# ---------------------------------------------------------------------------
# Multiple choice: hellaswag, cosmosqa, commonsenseqa, siqa, copa (en), xcopa (sw zh)
# ---------------------------------------------------------------------------

# topic -> (place, [(3rd person verb, base verb, object)], [goals])
MC_TOPICS_EN = {
    "kitchen": ("kitchen", [("stirs", "stir", "the soup"), ("cuts", "cut", "the onion"),
                            ("heats", "heat", "the pot"), ("adds", "add", "the salt"),
                            ("rinses", "rinse", "the spoon")],
                ("to cook dinner", "to make soup")),
    "school": ("classroom", [("writes", "write", "the exam"), ("cleans", "clean", "the desk"),
                             ("finishes", "finish", "the homework"),
                             ("erases", "erase", "the blackboard"),
                             ("studies", "study", "the lesson")],
               ("to pass the exam", "to learn the lesson")),
    "sport": ("stadium", [("kicks", "kick", "the football"), ("blows", "blow", "the whistle"),
                          ("joins", "join", "the team"), ("wins", "win", "the match"),
                          ("wears", "wear", "the jersey")],
              ("to win the match", "to score a goal")),
    "travel": ("station", [("boards", "board", "the train"), ("packs", "pack", "the suitcase"),
                           ("shows", "show", "the passport"),
                           ("checks", "check", "the timetable"),
                           ("carries", "carry", "the luggage")],
               ("to catch the train", "to visit the coast")),
    "garden": ("greenhouse", [("plants", "plant", "the seeds"),
                              ("waters", "water", "the flowers"), ("digs", "dig", "the soil"),
                              ("picks", "pick", "the tomatoes"), ("trims", "trim", "the hedge")],
               ("to grow vegetables", "to keep the flowers alive")),
    "clinic": ("hospital", [("swallows", "swallow", "the medicine"),
                            ("measures", "measure", "the fever"), ("calls", "call", "the nurse"),
                            ("wraps", "wrap", "the bandage"),
                            ("shakes", "shake", "the thermometer")],
               ("to get better", "to treat the fever")),
    "music": ("studio", [("plays", "play", "the guitar"), ("sings", "sing", "the song"),
                         ("tunes", "tune", "the piano"), ("beats", "beat", "the drum"),
                         ("adjusts", "adjust", "the microphone")],
              ("to practise the song", "to record an album")),
    "office": ("office", [("sends", "send", "the email"), ("prints", "print", "the report"),
                          ("opens", "open", "the folder"), ("types", "type", "the memo"),
                          ("schedules", "schedule", "the meeting")],
               ("to finish the report", "to prepare the meeting")),
}
MC_TOPICS_SW = {
    "kitchen": ("jikoni", [("anakoroga", "supu"), ("anakata", "kitunguu"),
                           ("anapasha", "sufuria"), ("anaongeza", "chumvi"),
                           ("anaosha", "kijiko")]),
    "school": ("darasani", [("anaandika", "mtihani"), ("anasafisha", "dawati"),
                            ("anamaliza", "zoezi"), ("anafuta", "ubao"), ("anasoma", "somo")]),
    "sport": ("uwanjani", [("anapiga", "mpira"), ("anapuliza", "filimbi"),
                           ("anajiunga na", "timu"), ("anashinda", "mechi"),
                           ("anavaa", "jezi")]),
    "travel": ("stesheni", [("anaingia", "treni"), ("anapakia", "sanduku"),
                            ("anaonyesha", "pasipoti"), ("anaangalia", "ratiba"),
                            ("anabeba", "mizigo")]),
    "garden": ("bustanini", [("anapanda", "mbegu"), ("anamwagilia", "maua"),
                             ("anachimba", "udongo"), ("anachuma", "nyanya"),
                             ("anapunguza", "uzio")]),
    "clinic": ("hospitalini", [("anameza", "dawa"), ("anapima", "homa"),
                               ("anaita", "muuguzi"), ("anafunga", "bandeji"),
                               ("anatumia", "kipimajoto")]),
    "music": ("studioni", [("anaimba", "wimbo"), ("anacheza", "gitaa"),
                           ("anarekebisha", "piano"), ("anagonga", "ngoma"),
                           ("anashika", "kipaza sauti")]),
    "office": ("ofisini", [("anatuma", "barua pepe"), ("anachapisha", "ripoti"),
                           ("anafungua", "faili"), ("anaandaa", "mkutano"),
                           ("anahifadhi", "memo")]),
}
MC_TOPICS_ZH = {
    "kitchen": ("厨房", [("搅拌", "汤"), ("切", "洋葱"), ("热", "锅"), ("加", "盐"), ("洗", "勺子")]),
    "school": ("教室", [("写", "作业"), ("擦", "黑板"), ("参加", "考试"), ("复习", "课文"),
                      ("整理", "课桌")]),
    "sport": ("体育场", [("踢", "足球"), ("吹", "哨子"), ("加入", "球队"), ("赢得", "比赛"),
                      ("穿", "球衣")]),
    "travel": ("车站", [("登上", "火车"), ("收拾", "行李"), ("出示", "护照"), ("查看", "时刻表"),
                      ("买", "车票")]),
    "garden": ("温室", [("种", "种子"), ("浇", "花"), ("挖", "土"), ("摘", "西红柿"),
                      ("修剪", "树篱")]),
    "clinic": ("医院", [("吃", "药"), ("量", "体温"), ("叫", "护士"), ("包扎", "伤口"),
                      ("甩", "体温计")]),
    "music": ("录音室", [("弹", "吉他"), ("唱", "歌"), ("调", "钢琴"), ("打", "鼓"),
                      ("调整", "麦克风")]),
    "office": ("办公室", [("发", "邮件"), ("打印", "报告"), ("打开", "文件夹"), ("安排", "会议"),
                       ("写", "备忘录")]),
}
# Contexts (and so correct choices) are about the first four topics; distractors come from
# the other four.  Topic agreement between context and choice is the cue a reader uses; that
# the two groups are disjoint also gives a mean-pooled tiny model a signal it can pick up
# from the choice alone (measured: a frozen random 2-layer encoder + adapter stays at
# chance on pure context-choice agreement within 300 steps, and learns this at once).
MC_CONTEXT_TOPICS = ("kitchen", "school", "sport", "travel")
MC_DISTRACTOR_TOPICS = ("garden", "clinic", "music", "office")


def _mc_row(rng: random.Random, label: int, n_choices: int, context: Callable[[str], str],
            choice: Callable[[str, bool], str]) -> Row:
    """A context about one topic; the correct choice (index ``label``) continues that topic,
    the distractors are about other topics."""
    target = rng.choice(MC_CONTEXT_TOPICS)
    topics = rng.sample(MC_DISTRACTOR_TOPICS, n_choices - 1)
    topics.insert(label, target)
    ctx = context(target)
    return {"context": ctx, "choices": [choice(t, t == target) for t in topics],
            "label": str(label)}


def _name(rng: random.Random) -> str:
    return rng.choice(FIRST_NAMES)


def _hellaswag_rows(rng: random.Random, lang: str, n: int) -> List[Row]:
    rows = []
    for label in _balanced(rng, n, 4):
        who = _name(rng)
        picked = []

        def context(t):
            place, acts, _ = MC_TOPICS_EN[t]
            a1, a2 = rng.sample(acts, 2)
            picked.append(a2)
            form = rng.randrange(3)
            if form == 0:
                return f"{who} is in the {place}. {who} {a1[0]} {a1[2]} and looks at {a2[2]}."
            if form == 1:
                return f"In the {place}, {who} {a1[0]} {a1[2]}. Next to {who} is {a2[2]}."
            return f"{who} walks into the {place} and {a1[0]} {a1[2]}, then picks up {a2[2]}."

        def choice(t, correct):
            act = picked[0] if correct else rng.choice(MC_TOPICS_EN[t][1])
            return f"Then {who} {act[0]} {act[2]}."

        rows.append(_mc_row(rng, label, 4, context, choice))
    return rows


def _cosmosqa_rows(rng: random.Random, lang: str, n: int) -> List[Row]:
    rows = []
    for label in _balanced(rng, n, 4):
        who = _name(rng)
        why = rng.random() < 0.5

        def context(t):
            place, acts, _ = MC_TOPICS_EN[t]
            a1, a2 = rng.sample(acts, 2)
            story = (f"{who} spent the afternoon in the {place}. {who} {a1[0]} {a1[2]} "
                     f"and then {a2[0]} {a2[2]}.")
            if why:
                return story + f" Why did {who} go to the {place}?"
            return story + f" What will {who} probably do next?"

        def choice(t, correct):
            _, acts, goals = MC_TOPICS_EN[t]
            if why:
                return f"{who} wanted {rng.choice(goals)}."
            act = rng.choice(acts)
            return f"{who} will {act[1]} {act[2]}."

        rows.append(_mc_row(rng, label, 4, context, choice))
    return rows


def _commonsenseqa_rows(rng: random.Random, lang: str, n: int) -> List[Row]:
    rows = []
    for label in _balanced(rng, n, 5):
        form = rng.randrange(2)

        def context(t):
            _, acts, _ = MC_TOPICS_EN[t]
            act = rng.choice(acts)
            if form == 0:
                return f"Where would you {act[1]} {act[2]}?"
            return f"Where is {act[2]} usually found?"

        rows.append(_mc_row(rng, label, 5, context, lambda t, correct: MC_TOPICS_EN[t][0]))
    return rows


def _siqa_rows(rng: random.Random, lang: str, n: int) -> List[Row]:
    rows = []
    for label in _balanced(rng, n, 3):
        who = _name(rng)
        goal_q = rng.random() < 0.5

        def context(t):
            place, acts, _ = MC_TOPICS_EN[t]
            act = rng.choice(acts)
            q = f"Why did {who} do this?" if goal_q else f"What will {who} want to do next?"
            return f"{who} {act[0]} {act[2]} in the {place}. {q}"

        def choice(t, correct):
            _, acts, goals = MC_TOPICS_EN[t]
            if goal_q:
                return rng.choice(goals)
            act = rng.choice(acts)
            return f"{act[1]} {act[2]}"

        rows.append(_mc_row(rng, label, 3, context, choice))
    return rows


_COPA_TEXT = {
    "en": {"went": "{N} went to the {P}.", "act": "{N} {V} {O}.", "was": "{N} was in the {P}.",
           "effect": "What happened as a result?", "cause": "What was the cause?"},
    "sw": {"went": "{N} alikwenda {P}.", "act": "{N} {V} {O}.", "was": "{N} alikuwa {P}.",
           "effect": "Nini kilitokea baadaye?", "cause": "Sababu ilikuwa nini?"},
    "zh": {"went": "{N} 去了{P}。", "act": "{N} {V}{O}。", "was": "{N} 在{P}。",
           "effect": "结果发生了什么？", "cause": "原因是什么？"},
}


def _copa_topic(lang: str, t: str) -> Tuple[str, List[Tuple[str, str]]]:
    if lang == "en":
        place, acts, _ = MC_TOPICS_EN[t]
        return place, [(v3, obj) for v3, _, obj in acts]
    return {"sw": MC_TOPICS_SW, "zh": MC_TOPICS_ZH}[lang][t]


def _copa_rows(rng: random.Random, lang: str, n: int) -> List[Row]:
    T = _COPA_TEXT[lang]
    sep = "" if lang == "zh" else " "
    rows = []
    for label in _balanced(rng, n, 2):
        who = _name(rng)
        effect = rng.random() < 0.5

        def act_text(t):
            v, o = rng.choice(_copa_topic(lang, t)[1])
            return T["act"].format(N=who, V=v, O=o)

        def context(t):
            if effect:
                return T["went"].format(N=who, P=_copa_topic(lang, t)[0]) + sep + T["effect"]
            return act_text(t) + sep + T["cause"]

        def choice(t, correct):
            if effect:
                return act_text(t)
            return T["was"].format(N=who, P=_copa_topic(lang, t)[0])

        rows.append(_mc_row(rng, label, 2, context, choice))
    return rows


# ---------------------------------------------------------------------------
# Retrieval: tatoeba, bucc2018, lareqa, mewslix
# ---------------------------------------------------------------------------

_SEEN = {"en": "{N} saw it {K} times in {C}.", "de": "{N} hat es {K} Mal in {C} gesehen.",
         "fr": "{N} l'a vu {K} fois à {C}.", "es": "{N} lo vio {K} veces en {C}.",
         "sw": "{N} aliiona mara {K} huko {C}.", "zh": "{N} 在 {C} 看到了 {K} 次。",
         "ar": "رآه {N} {K} مرات في {C}."}


def _short_scene(rng: random.Random):
    """A scene without its optional details: retrieval sentences stay short, so the rare
    tokens they share weigh more in a mean-pooled embedding."""
    sc = nli._sample_scene(rng)
    return nli._Scene(sc.subj, sc.verb, sc.obj, None, None, None, None)


def _seen(rng: random.Random, lang: str, name: str, k: int, city: str) -> str:
    return _SEEN[lang].format(N=name, K=k, C=city)


def _parallel(rng: random.Random, lang: str, u: _Unique) -> Tuple[str, str]:
    """The same short scene in ``lang`` and English, with a shared name, number and city."""
    sc = _short_scene(rng)
    name, k, city = u.name(), u.number(), rng.choice(CITIES)
    sep = "" if lang == "zh" else " "
    text = _scene_sentence(rng, lang, sc) + sep + _seen(rng, lang, name, k, city)
    en = _scene_sentence(rng, "en", sc) + " " + _seen(rng, "en", name, k, city)
    return text, en


def _single(rng: random.Random, lang: str, u: _Unique) -> str:
    sep = "" if lang == "zh" else " "
    return _scene_sentence(rng, lang, _short_scene(rng)) + sep + \
        _seen(rng, lang, u.name(), u.number(), rng.choice(CITIES))


def _tatoeba_lines(rng: random.Random, lang: str, n: int) -> List[Row]:
    u = _Unique(rng)
    pairs = [_parallel(rng, lang, u) for _ in range(n)]
    qs = [{"query": q, "id": f"{lang}-{i:04d}", "gold": [f"en-{i:04d}"]}
          for i, (q, _) in enumerate(pairs)]
    cs = [{"candidate": c, "id": f"en-{i:04d}"} for i, (_, c) in enumerate(pairs)]
    return qs + cs


def _bucc_lines(rng: random.Random, lang: str, n: int, n_gold: int = 40) -> List[Row]:
    u = _Unique(rng)
    pairs = [_parallel(rng, lang, u) for _ in range(n_gold)]
    src = [(text, i) for i, (text, _) in enumerate(pairs)] + \
        [(_single(rng, lang, u), None) for _ in range(n - n_gold)]
    tgt = [(en, i) for i, (_, en) in enumerate(pairs)] + \
        [(_single(rng, "en", u), None) for _ in range(n - n_gold)]
    rng.shuffle(src)
    rng.shuffle(tgt)
    tgt_id = {pair: f"en-{j + 1:09d}" for j, (_, pair) in enumerate(tgt) if pair is not None}
    qs = [{"query": text, "id": f"{lang}-{j + 1:09d}",
           "gold": [tgt_id[pair]] if pair is not None else []}
          for j, (text, pair) in enumerate(src)]
    cs = [{"candidate": text, "id": f"en-{j + 1:09d}"} for j, (text, _) in enumerate(tgt)]
    return qs + cs


# A fact: who bought how many tickets where.  The question names the person and the number,
# the answers (in the question's language and in English) add the city.
_LAREQA = {
    "q": {"de": "Wo hat {N} {K} Fahrkarten gekauft?", "es": "¿Dónde compró {N} {K} billetes?",
          "zh": "{N} 在哪里买了 {K} 张票？", "ar": "أين اشترى {N} {K} تذكرة؟"},
    "a1": {"en": "{N} bought {K} tickets in {C}.", "de": "{N} hat in {C} {K} Fahrkarten gekauft.",
           "es": "{N} compró {K} billetes en {C}.", "zh": "{N} 在 {C} 买了 {K} 张票。",
           "ar": "اشترى {N} {K} تذكرة في {C}."},
    "a2": {"en": "In {C}, {N} paid for {K} tickets.", "de": "In {C} bezahlte {N} {K} Fahrkarten.",
           "es": "En {C}, {N} pagó {K} billetes.", "zh": "在 {C}，{N} 付了 {K} 张票的钱。",
           "ar": "في {C} دفع {N} ثمن {K} تذكرة."},
}


def _lareqa_lines(rng: random.Random, lang: str, n: int) -> List[Row]:
    u = _Unique(rng)
    queries, cands = [], []
    for i in range(n):
        name, city, k = u.name(), rng.choice(CITIES), u.number(5, 999)
        ids = []
        for key in (("a1", "a2") if rng.random() < 0.5 else ("a1",)):
            for cl in (lang, "en"):
                ids.append(len(cands))
                cands.append(_LAREQA[key][cl].format(N=name, C=city, K=k))
        queries.append((_LAREQA["q"][lang].format(N=name, K=k), ids))
    order = list(range(len(cands)))
    rng.shuffle(order)
    cid = {old: f"c{new:04d}" for new, old in enumerate(order)}
    qs = [{"query": q, "id": f"{lang}-q{i:04d}", "gold": sorted(cid[j] for j in ids)}
          for i, (q, ids) in enumerate(queries)]
    cs = [{"candidate": cands[old], "id": cid[old]} for old in order]
    return qs + cs


_MEWSLI_DESC = {"ORG": "{E} is a company based in {C}, founded in {Y}.",
                "PER": "{E} is a musician born in {C} in {Y}."}
# Mentions name the entity, its city and its year, as the descriptions do.
_MEWSLI_MENTION = {
    "de": ("{E} aus {C} feierte {Y} ein Jubiläum.", "Seit {Y} kennt man {E} in {C}."),
    "es": ("{E} de {C} celebró un aniversario en {Y}.", "Desde {Y}, {E} es famoso en {C}."),
    "ar": ("احتفل {E} من {C} بذكرى في {Y}.", "منذ {Y} يعرف الناس {E} في {C}."),
}


def _mewslix_lines(rng: random.Random, lang: str, n: int) -> List[Row]:
    u = _Unique(rng)
    entities, seen_org = [], set()
    while len(entities) < n:
        kind = rng.choice(("ORG", "PER"))
        if kind == "ORG":
            name = " ".join(_entity(rng, "ORG", "en", n_words=rng.choice((2, 3))))
            if name in seen_org:
                continue
            seen_org.add(name)
        else:
            name = u.name()
        qid = f"Q{u.number(1000, 999999)}"
        entities.append((qid, kind, name, rng.choice(CITIES), rng.randint(1900, 2020)))
    queries = []
    for qid, kind, name, city, year in entities:
        for _ in range(rng.choice((0, 1, 1, 2))):
            queries.append((rng.choice(_MEWSLI_MENTION[lang]).format(E=name, C=city, Y=year),
                            qid))
    rng.shuffle(queries)
    qs = [{"query": q, "id": f"{lang}-m{i:04d}", "gold": [qid]}
          for i, (q, qid) in enumerate(queries)]
    cs = [{"candidate": _MEWSLI_DESC[kind].format(E=name, C=city, Y=year), "id": qid}
          for qid, kind, name, city, year in entities]
    return qs + cs


# ---------------------------------------------------------------------------
# Raw text for language modules
# ---------------------------------------------------------------------------

def _text_lines(rng: random.Random, lang: str, n: int) -> List[str]:
    u = _Unique(rng)
    lines = []
    for _ in range(n):
        sents = [_scene_sentence(rng, lang) for _ in range(rng.randint(1, 3))]
        if rng.random() < 0.2:
            sents.insert(rng.randint(0, len(sents)),
                         _seen(rng, lang, u.name(), rng.randint(2, 99), rng.choice(CITIES)))
        lines.append(_join(lang, sents))
    return lines


# ---------------------------------------------------------------------------
# The task table and writers
# ---------------------------------------------------------------------------

# name -> (format, role, builder(rng, lang, n), evaluation languages, sizes (train, eval))
# role "intermediate": train.jsonl + validation.jsonl (English);
# "target": train.en.jsonl + {validation,test}.<lang>.jsonl;  "eval": no training file.
TASKS: Dict[str, Tuple[str, str, Callable, Tuple[str, ...], Tuple[int, int]]] = {
    "qqp": ("pair_classification", "intermediate", _qqp_rows, ("en",), (N_TRAIN, N_EVAL)),
    "paws": ("pair_classification", "intermediate", _paws_rows, ("en",), (N_TRAIN, N_EVAL)),
    "pawsx": ("pair_classification", "target", _paws_rows, ("en", "de", "fr", "es", "zh"),
              (N_TRAIN, N_EVAL)),
    "anli_plus": ("pair_classification", "intermediate", _anli_rows, ("en",), (N_TRAIN, N_EVAL)),
    "stsb": ("regression", "intermediate", _sts_rows, ("en",), (N_TRAIN, N_EVAL)),
    "sickr": ("regression", "intermediate", _sick_rows, ("en",), (N_TRAIN, N_EVAL)),
    "stsb_multi": ("regression", "target", _sts_rows, ("en", "de", "fr", "es", "zh"),
                   (N_TRAIN, N_EVAL)),
    "udpos": ("tagging", "target", _udpos_rows, ("en", "de", "fr", "es", "zh", "ar"),
              (N_TRAIN, N_EVAL)),
    "panx": ("tagging", "target", _panx_rows, ("en", "de", "fr", "es", "sw", "zh", "ar"),
             (N_TRAIN, N_EVAL)),
    "ccg": ("tagging", "intermediate", _ccg_rows, ("en",), (N_TRAIN, N_EVAL)),
    "squad": ("qa", "intermediate", _qa_rows, ("en",), (N_QA_TRAIN, N_QA_EVAL)),
    "squad_v2": ("qa", "intermediate", _qa_rows, ("en",), (N_QA_TRAIN, N_QA_EVAL)),
    "xquad": ("qa", "target", _qa_rows, ("en", "de", "es", "zh", "ar"), (N_QA_TRAIN, N_QA_EVAL)),
    "mlqa": ("qa", "target", _qa_rows, ("en", "de", "es", "zh", "ar"), (N_QA_TRAIN, N_QA_EVAL)),
    "tydiqa": ("qa", "target", _qa_rows, ("en", "ar", "sw"), (N_QA_TRAIN, N_QA_EVAL)),
    "hellaswag": ("multiple_choice", "intermediate", _hellaswag_rows, ("en",), (N_TRAIN, N_EVAL)),
    "cosmosqa": ("multiple_choice", "intermediate", _cosmosqa_rows, ("en",), (N_TRAIN, N_EVAL)),
    "commonsenseqa": ("multiple_choice", "intermediate", _commonsenseqa_rows, ("en",),
                      (N_TRAIN, N_EVAL)),
    "siqa": ("multiple_choice", "intermediate", _siqa_rows, ("en",), (N_TRAIN, N_EVAL)),
    "copa": ("multiple_choice", "intermediate", _copa_rows, ("en",), (N_TRAIN, N_EVAL)),
    "xcopa": ("multiple_choice", "eval", _copa_rows, ("sw", "zh"), (0, N_EVAL)),
    "tatoeba": ("retrieval", "eval", _tatoeba_lines, ("de", "fr", "es", "sw", "zh", "ar"),
                (0, N_EVAL)),
    "bucc2018": ("retrieval", "eval", _bucc_lines, ("de", "fr", "zh"), (0, 150)),
    "lareqa": ("retrieval", "eval", _lareqa_lines, ("de", "es", "zh", "ar"), (0, 24)),
    "mewslix": ("retrieval", "eval", _mewslix_lines, ("de", "es", "ar"), (0, 40)),
}
TEXT_LINES = 300


def _build(task: str, split: str, lang: str, n: int) -> List[Row]:
    fmt, _, builder, _, _ = TASKS[task]
    rng = _rng("adapterxl-samples", task, split, lang)
    if fmt == "qa":
        unanswerable = 1 / 3 if task == "squad_v2" else 0.0
        return builder(rng, lang, n, f"{task}-{split}-{lang}", unanswerable)
    return builder(rng, lang, n)


def generate() -> Dict[str, str]:
    """Every sample file as {path relative to the samples folder: file content}."""
    files: Dict[str, List] = {}
    for task, (fmt, role, _, langs, (n_train, n_eval)) in TASKS.items():
        if role == "intermediate":
            files[f"{task}/train.jsonl"] = _build(task, "train", "en", n_train)
            files[f"{task}/validation.jsonl"] = _build(task, "validation", "en", n_eval)
            continue
        if role == "target":
            files[f"{task}/train.en.jsonl"] = _build(task, "train", "en", n_train)
        for lang in langs:
            for split in ("validation", "test"):
                files[f"{task}/{split}.{lang}.jsonl"] = _build(task, split, lang, n_eval)
    out = {rel: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
           for rel, rows in files.items()}
    for lang in nli.LANGUAGES:
        lines = _text_lines(_rng("adapterxl-samples", "text", lang), lang, TEXT_LINES)
        out[f"text/{lang}.txt"] = "".join(line + "\n" for line in lines)
    return out


def write_all(root: Path) -> List[Path]:
    """Write every sample file under ``root`` (e.g. ``.../resources/samples``)."""
    return nli.write_files(root, generate())


default_samples_dir = nli.default_samples_dir


def main(argv: Optional[List[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else default_samples_dir()
    for path in write_all(root):
        print(path)


if __name__ == "__main__":  # pragma: no cover
    main()
