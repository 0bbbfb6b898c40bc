"""Deterministic synthetic NLI data in the MNLI / XNLI schemas.

The bundled sample files under ``adapterxl/resources/samples`` are produced by this
module.  They are meant for tests and smoke runs with tiny random-init backbones, so
the label is recoverable from token identity alone:

* entailment (0):    a shortened restatement of the premise (subject + verb + object)
                     that contains neither a hedge word nor a negation;
* neutral (1):       the same restatement with a per-language hedge word
                     (en "maybe"/"perhaps", de "vielleicht", fr "peut-être", es "quizás",
                     sw "labda", zh "也许", ar "ربما");
* contradiction (2): the restatement with the language's negation
                     (en "not"/"never", de "nicht"/"nie", fr "ne ... pas/jamais",
                     es "no"/"nunca", sw "si"/"hapana", zh "不"/"没有", ar "لا"/"ليس").

Premises are simple subject-verb-object sentences (about 5-12 words) built from small
per-language word lists, with optional adjectives, a place and a time phrase, so
lengths are spread.  Everything is pure Python and driven by ``random.Random(seed)``;
importing the module has no side effects.

A build tool of the bundled samples, not part of the runtime package (nothing in adapterxl
imports it). Run ``python adapterxl/resources/make_nli_samples.py`` to regenerate the NLI
sample files; ``make_samples.py`` (next to it) writes every task's.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

__all__ = [
    "LANGUAGES",
    "LABELS",
    "HEDGES",
    "NEGATIONS",
    "nli_example",
    "nli_examples",
    "write_files",
    "write_samples",
    "sample_files",
]

LANGUAGES: Tuple[str, ...] = ("en", "de", "fr", "es", "sw", "zh", "ar")
LABELS: Tuple[str, ...] = ("entailment", "neutral", "contradiction")

ENTAILMENT, NEUTRAL, CONTRADICTION = 0, 1, 2

# Marker words, per language (used by the generator and by its self-checks).
HEDGES: Dict[str, Tuple[str, ...]] = {
    "en": ("maybe", "perhaps"),
    "de": ("vielleicht",),
    "fr": ("peut-être",),
    "es": ("quizás",),
    "sw": ("labda",),
    "zh": ("也许",),
    "ar": ("ربما",),
}
NEGATIONS: Dict[str, Tuple[str, ...]] = {
    "en": ("not", "never"),
    "de": ("nicht", "nie"),
    "fr": ("ne", "n'", "pas", "jamais"),
    "es": ("no", "nunca"),
    "sw": ("si", "hapana"),
    "zh": ("不", "没有"),
    "ar": ("لا", "ليس"),
}

# ---------------------------------------------------------------------------
# Shared concept inventory.  Languages realise the same concepts with their own
# words and grammar; the inventory only decides which combinations are sensible.
# ---------------------------------------------------------------------------

SUBJECTS = ("teacher", "student", "child", "doctor", "farmer", "mother", "father",
            "friend", "driver", "chef", "cat", "dog")
ANIMALS = frozenset({"cat", "dog"})

# object -> category: R readable, F food, D drink, T thing
OBJECTS = {
    "book": "R", "newspaper": "R", "letter": "R",
    "apple": "F", "bread": "F", "rice": "F", "cake": "F", "fish": "F",
    "tea": "D", "coffee": "D", "water": "D", "milk": "D",
    "shirt": "T", "car": "T", "ball": "T", "pen": "T", "bag": "T",
}

# verb -> (allowed objects, animal subjects allowed)
_ALL = tuple(OBJECTS)


def _cat(*cats: str) -> Tuple[str, ...]:
    return tuple(o for o, c in OBJECTS.items() if c in cats)


VERBS = {
    "read": (_cat("R"), False),
    "eat": (_cat("F"), True),
    "drink": (_cat("D"), True),
    "buy": (_ALL, False),
    "write": (("letter",), False),
    "wash": (("shirt", "car", "ball", "apple"), False),
    "make": (("rice", "fish", "tea", "coffee"), False),
    "take": (_ALL, True),
    "find": (_cat("T", "R"), True),
    "sell": (_ALL, False),
    "like": (_ALL, True),
    "see": (_cat("T", "R", "F"), True),
}

PERSON_ADJS = ("young", "old", "happy", "tired")
# object adjective -> allowed object categories
OBJECT_ADJS = {
    "new": "RT", "red": "RT", "big": "RFT", "small": "RFT",
    "fresh": "FD", "cold": "D", "hot": "D",
}
PLACES = ("garden", "school", "home", "market", "park")
TIMES = ("today", "every_day", "morning", "evening")


# ---------------------------------------------------------------------------
# Per-language lexicons
# ---------------------------------------------------------------------------

_EN = {
    "subj": {"teacher": "teacher", "student": "student", "child": "child", "doctor": "doctor",
             "farmer": "farmer", "mother": "mother", "father": "father", "friend": "friend",
             "driver": "driver", "chef": "chef", "cat": "cat", "dog": "dog"},
    "obj": {"book": "book", "newspaper": "newspaper", "letter": "letter", "apple": "apple",
            "bread": "bread", "rice": "rice", "cake": "cake", "fish": "fish", "tea": "tea",
            "coffee": "coffee", "water": "water", "milk": "milk", "shirt": "shirt",
            "car": "car", "ball": "ball", "pen": "pen", "bag": "bag"},
    # (3rd person singular, base form)
    "verb": {"read": ("reads", "read"), "eat": ("eats", "eat"), "drink": ("drinks", "drink"),
             "buy": ("buys", "buy"), "write": ("writes", "write"), "wash": ("washes", "wash"),
             "make": ("makes", "make"), "take": ("takes", "take"), "find": ("finds", "find"),
             "sell": ("sells", "sell"), "like": ("likes", "like"), "see": ("sees", "see")},
    "adj": {"young": "young", "old": "old", "happy": "happy", "tired": "tired", "new": "new",
            "red": "red", "big": "big", "small": "small", "fresh": "fresh", "cold": "cold",
            "hot": "hot"},
    "place": {"garden": "in the garden", "school": "at school", "home": "at home",
              "market": "at the market", "park": "in the park"},
    "time": {"today": "today", "every_day": "every day", "morning": "every morning",
             "evening": "in the evening"},
}

# German: nouns carry grammatical gender (m/f/n).
_DE = {
    "subj": {"teacher": ("Lehrer", "m"), "student": ("Student", "m"), "child": ("Kind", "n"),
             "doctor": ("Arzt", "m"), "farmer": ("Bauer", "m"), "mother": ("Mutter", "f"),
             "father": ("Vater", "m"), "friend": ("Freundin", "f"), "driver": ("Fahrer", "m"),
             "chef": ("Koch", "m"), "cat": ("Katze", "f"), "dog": ("Hund", "m")},
    "obj": {"book": ("Buch", "n"), "newspaper": ("Zeitung", "f"), "letter": ("Brief", "m"),
            "apple": ("Apfel", "m"), "bread": ("Brot", "n"), "rice": ("Reis", "m"),
            "cake": ("Kuchen", "m"), "fish": ("Fisch", "m"), "tea": ("Tee", "m"),
            "coffee": ("Kaffee", "m"), "water": ("Wasser", "n"), "milk": ("Milch", "f"),
            "shirt": ("Hemd", "n"), "car": ("Auto", "n"), "ball": ("Ball", "m"),
            "pen": ("Stift", "m"), "bag": ("Tasche", "f")},
    "verb": {"read": "liest", "eat": "isst", "drink": "trinkt", "buy": "kauft",
             "write": "schreibt", "wash": "wäscht", "make": "kocht", "take": "nimmt",
             "find": "findet", "sell": "verkauft", "like": "mag", "see": "sieht"},
    # adjective stems (weak declension after the definite article)
    "adj": {"young": "jung", "old": "alt", "happy": "froh", "tired": "müde", "new": "neu",
            "red": "rot", "big": "groß", "small": "klein", "fresh": "frisch", "cold": "kalt",
            "hot": "heiß"},
    "place": {"garden": "im Garten", "school": "in der Schule", "home": "zu Hause",
              "market": "auf dem Markt", "park": "im Park"},
    "time": {"today": "heute", "every_day": "jeden Tag", "morning": "am Morgen",
             "evening": "am Abend"},
}

# French: (noun, gender); adjectives as (masculine, feminine), placed after the noun.
_FR = {
    "subj": {"teacher": ("professeur", "m"), "student": ("étudiant", "m"),
             "child": ("enfant", "m"), "doctor": ("médecin", "m"), "farmer": ("fermier", "m"),
             "mother": ("mère", "f"), "father": ("père", "m"), "friend": ("amie", "f"),
             "driver": ("chauffeur", "m"), "chef": ("cuisinier", "m"), "cat": ("chat", "m"),
             "dog": ("chien", "m")},
    "obj": {"book": ("livre", "m"), "newspaper": ("journal", "m"), "letter": ("lettre", "f"),
            "apple": ("pomme", "f"), "bread": ("pain", "m"), "rice": ("riz", "m"),
            "cake": ("gâteau", "m"), "fish": ("poisson", "m"), "tea": ("thé", "m"),
            "coffee": ("café", "m"), "water": ("eau", "f"), "milk": ("lait", "m"),
            "shirt": ("chemise", "f"), "car": ("voiture", "f"), "ball": ("ballon", "m"),
            "pen": ("stylo", "m"), "bag": ("sac", "m")},
    "verb": {"read": "lit", "eat": "mange", "drink": "boit", "buy": "achète",
             "write": "écrit", "wash": "lave", "make": "prépare", "take": "prend",
             "find": "trouve", "sell": "vend", "like": "aime", "see": "voit"},
    "adj": {"young": ("content", "contente"), "old": ("patient", "patiente"),
            "happy": ("heureux", "heureuse"), "tired": ("fatigué", "fatiguée"),
            "new": ("neuf", "neuve"), "red": ("rouge", "rouge"),
            "big": ("énorme", "énorme"), "small": ("minuscule", "minuscule"),
            "fresh": ("frais", "fraîche"), "cold": ("froid", "froide"),
            "hot": ("chaud", "chaude")},
    "place": {"garden": "dans le jardin", "school": "à l'école", "home": "à la maison",
              "market": "au marché", "park": "dans le parc"},
    "time": {"today": "aujourd'hui", "every_day": "chaque jour", "morning": "le matin",
             "evening": "le soir"},
}

# Spanish: (noun, gender, article); adjectives (masculine, feminine) after the noun.
_ES = {
    "subj": {"teacher": ("maestro", "m", "el"), "student": ("estudiante", "m", "el"),
             "child": ("niño", "m", "el"), "doctor": ("médico", "m", "el"),
             "farmer": ("granjero", "m", "el"), "mother": ("madre", "f", "la"),
             "father": ("padre", "m", "el"), "friend": ("amiga", "f", "la"),
             "driver": ("conductor", "m", "el"), "chef": ("cocinero", "m", "el"),
             "cat": ("gato", "m", "el"), "dog": ("perro", "m", "el")},
    "obj": {"book": ("libro", "m", "el"), "newspaper": ("periódico", "m", "el"),
            "letter": ("carta", "f", "la"), "apple": ("manzana", "f", "la"),
            "bread": ("pan", "m", "el"), "rice": ("arroz", "m", "el"),
            "cake": ("pastel", "m", "el"), "fish": ("pescado", "m", "el"),
            "tea": ("té", "m", "el"), "coffee": ("café", "m", "el"),
            "water": ("agua", "f", "el"), "milk": ("leche", "f", "la"),
            "shirt": ("camisa", "f", "la"), "car": ("coche", "m", "el"),
            "ball": ("pelota", "f", "la"), "pen": ("bolígrafo", "m", "el"),
            "bag": ("bolsa", "f", "la")},
    "verb": {"read": "lee", "eat": "come", "drink": "bebe", "buy": "compra",
             "write": "escribe", "wash": "lava", "make": "prepara", "take": "toma",
             "find": "encuentra", "sell": "vende", "like": "quiere", "see": "ve"},
    "adj": {"young": ("joven", "joven"), "old": ("viejo", "vieja"),
            "happy": ("feliz", "feliz"), "tired": ("cansado", "cansada"),
            "new": ("nuevo", "nueva"), "red": ("rojo", "roja"),
            "big": ("grande", "grande"), "small": ("pequeño", "pequeña"),
            "fresh": ("fresco", "fresca"), "cold": ("frío", "fría"),
            "hot": ("caliente", "caliente")},
    "place": {"garden": "en el jardín", "school": "en la escuela", "home": "en casa",
              "market": "en el mercado", "park": "en el parque"},
    "time": {"today": "hoy", "every_day": "cada día", "morning": "por la mañana",
             "evening": "por la tarde"},
}

# Swahili: animate subjects all take the a- subject prefix; verbs as
# (present affirmative, present negative).  Object adjectives are invariable ones.
_SW = {
    "subj": {"teacher": "mwalimu", "student": "mwanafunzi", "child": "mtoto",
             "doctor": "daktari", "farmer": "mkulima", "mother": "mama", "father": "baba",
             "friend": "rafiki", "driver": "dereva", "chef": "mpishi", "cat": "paka",
             "dog": "mbwa"},
    "obj": {"book": "kitabu", "newspaper": "gazeti", "letter": "barua", "apple": "tufaha",
            "bread": "mkate", "rice": "wali", "cake": "keki", "fish": "samaki", "tea": "chai",
            "coffee": "kahawa", "water": "maji", "milk": "maziwa", "shirt": "shati",
            "car": "gari", "ball": "mpira", "pen": "kalamu", "bag": "mfuko"},
    "verb": {"read": ("anasoma", "hasomi"), "eat": ("anakula", "hali"),
             "drink": ("anakunywa", "hanywi"), "buy": ("ananunua", "hanunui"),
             "write": ("anaandika", "haandiki"), "wash": ("anaosha", "haoshi"),
             "make": ("anapika", "hapiki"), "take": ("anachukua", "hachukui"),
             "find": ("anatafuta", "hatafuti"), "sell": ("anauza", "hauzi"),
             "like": ("anapenda", "hapendi"), "see": ("anaona", "haoni")},
    "person_adj": {"young": "mdogo", "old": "mzee", "happy": "hodari", "tired": "mrefu"},
    "object_adj": ("safi", "ghali", "rahisi", "bora"),
    "place": {"garden": "bustanini", "school": "shuleni", "home": "nyumbani",
              "market": "sokoni", "park": "shambani"},
    "time": {"today": "leo", "every_day": "kila siku", "morning": "asubuhi",
             "evening": "jioni"},
}

# Chinese: no spaces; word order S + time + place + V + O.
_ZH = {
    "subj": {"teacher": "老师", "student": "学生", "child": "孩子", "doctor": "医生",
             "farmer": "农民", "mother": "妈妈", "father": "爸爸", "friend": "朋友",
             "driver": "司机", "chef": "厨师", "cat": "猫", "dog": "狗"},
    "obj": {"book": "书", "newspaper": "报纸", "letter": "信", "apple": "苹果",
            "bread": "面包", "rice": "米饭", "cake": "蛋糕", "fish": "鱼", "tea": "茶",
            "coffee": "咖啡", "water": "水", "milk": "牛奶", "shirt": "衬衫",
            "car": "汽车", "ball": "球", "pen": "笔", "bag": "包"},
    "verb": {"read": "读", "eat": "吃", "drink": "喝", "buy": "买", "write": "写",
             "wash": "洗", "make": "煮", "take": "拿", "find": "找", "sell": "卖",
             "like": "喜欢", "see": "看见"},
    "adj": {"young": "年轻的", "old": "年老的", "happy": "高兴的", "tired": "疲倦的",
            "new": "新的", "red": "红色的", "big": "大的", "small": "小的",
            "fresh": "新鲜的", "cold": "冰的", "hot": "热的"},
    "place": {"garden": "在花园里", "school": "在学校", "home": "在家里",
              "market": "在市场上", "park": "在公园里"},
    "time": {"today": "今天", "every_day": "每天", "morning": "早上", "evening": "晚上"},
}

# Arabic: (noun with article, gender); adjectives (masculine, feminine) with article;
# verbs in the masculine imperfect (feminine: initial ي -> ت).
_AR = {
    "subj": {"teacher": ("المعلم", "m"), "student": ("الطالب", "m"), "child": ("الطفل", "m"),
             "doctor": ("الطبيب", "m"), "farmer": ("الفلاح", "m"), "mother": ("الأم", "f"),
             "father": ("الأب", "m"), "friend": ("الصديق", "m"), "driver": ("السائق", "m"),
             "chef": ("الطباخ", "m"), "cat": ("القط", "m"), "dog": ("الكلب", "m")},
    "obj": {"book": ("الكتاب", "m"), "newspaper": ("الجريدة", "f"),
            "letter": ("الرسالة", "f"), "apple": ("التفاحة", "f"), "bread": ("الخبز", "m"),
            "rice": ("الأرز", "m"), "cake": ("الكعكة", "f"), "fish": ("السمك", "m"),
            "tea": ("الشاي", "m"), "coffee": ("القهوة", "f"), "water": ("الماء", "m"),
            "milk": ("الحليب", "m"), "shirt": ("القميص", "m"), "car": ("السيارة", "f"),
            "ball": ("الكرة", "f"), "pen": ("القلم", "m"), "bag": ("الحقيبة", "f")},
    "verb": {"read": "يقرأ", "eat": "يأكل", "drink": "يشرب", "buy": "يشتري",
             "write": "يكتب", "wash": "يغسل", "make": "يحضر", "take": "يأخذ",
             "find": "يجد", "sell": "يبيع", "like": "يحب", "see": "يرى"},
    "adj": {"young": ("الصغير", "الصغيرة"), "old": ("الكبير", "الكبيرة"),
            "happy": ("السعيد", "السعيدة"), "tired": ("المتعب", "المتعبة"),
            "new": ("الجديد", "الجديدة"), "red": ("الأحمر", "الحمراء"),
            "big": ("الكبير", "الكبيرة"), "small": ("الصغير", "الصغيرة"),
            "fresh": ("الطازج", "الطازجة"), "cold": ("البارد", "الباردة"),
            "hot": ("الساخن", "الساخنة")},
    "place": {"garden": "في الحديقة", "school": "في المدرسة", "home": "في البيت",
              "market": "في السوق", "park": "في الحقل"},
    "time": {"today": "اليوم", "every_day": "كل يوم", "morning": "في الصباح",
             "evening": "في المساء"},
}


# ---------------------------------------------------------------------------
# Scene sampling (language independent)
# ---------------------------------------------------------------------------

class _Scene:
    __slots__ = ("subj", "verb", "obj", "subj_adj", "obj_adj", "place", "time")

    def __init__(self, subj, verb, obj, subj_adj, obj_adj, place, time):
        self.subj, self.verb, self.obj = subj, verb, obj
        self.subj_adj, self.obj_adj = subj_adj, obj_adj
        self.place, self.time = place, time


def _sample_scene(rng: random.Random) -> _Scene:
    subj = rng.choice(SUBJECTS)
    verbs = [v for v, (_, animal_ok) in VERBS.items() if animal_ok or subj not in ANIMALS]
    verb = rng.choice(verbs)
    obj = rng.choice(VERBS[verb][0])
    subj_adj = rng.choice(PERSON_ADJS) if rng.random() < 0.5 else None
    adjs = [a for a, cats in OBJECT_ADJS.items() if OBJECTS[obj] in cats]
    obj_adj = rng.choice(adjs) if rng.random() < 0.5 else None
    place = rng.choice(PLACES) if rng.random() < 0.5 else None
    time = rng.choice(TIMES) if rng.random() < 0.4 else None
    return _Scene(subj, verb, obj, subj_adj, obj_adj, place, time)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


# ---------------------------------------------------------------------------
# Realisers.  Each returns (premise, hypothesis) for a scene and label.
# ``keep`` decides which premise details the (shorter) hypothesis repeats.
# ---------------------------------------------------------------------------

def _keep(rng: random.Random, sc: _Scene) -> Dict[str, bool]:
    # The hypothesis repeats at most one optional detail of the premise.
    options = [k for k in ("subj_adj", "obj_adj", "place", "time") if getattr(sc, k)]
    kept = rng.choice(options) if options and rng.random() < 0.4 else None
    return {k: k == kept for k in ("subj_adj", "obj_adj", "place", "time")}


def _en(rng, sc, label):
    L = _EN

    def np_(noun, adj):
        return "the " + (L["adj"][adj] + " " if adj else "") + noun

    def sent(subj_adj, obj_adj, place, time, verb_phrase):
        parts = [np_(L["subj"][sc.subj], subj_adj), verb_phrase,
                 np_(L["obj"][sc.obj], obj_adj)]
        if place:
            parts.append(L["place"][place])
        if time:
            parts.append(L["time"][time])
        return _cap(" ".join(parts)) + "."

    v3, vb = L["verb"][sc.verb]
    premise = sent(sc.subj_adj, sc.obj_adj, sc.place, sc.time, v3)
    k = _keep(rng, sc)
    args = (sc.subj_adj if k["subj_adj"] else None, sc.obj_adj if k["obj_adj"] else None,
            sc.place if k["place"] else None, sc.time if k["time"] else None)
    if label == ENTAILMENT:
        hyp = sent(*args, v3)
    elif label == NEUTRAL:
        form = rng.randrange(3)
        if form == 0:
            hyp = "Maybe " + sent(*args, v3)[0].lower() + sent(*args, v3)[1:]
        elif form == 1:
            hyp = "Perhaps " + sent(*args, v3)[0].lower() + sent(*args, v3)[1:]
        else:
            hyp = sent(*args, rng.choice(("maybe", "perhaps")) + " " + v3)
    else:
        if rng.random() < 0.5:
            hyp = sent(*args, "does not " + vb)
        else:
            hyp = sent(*args, "never " + v3)
    return premise, hyp


def _de_adj(stem: str, case: str, gender: str) -> str:
    # weak declension after the definite article (singular)
    if case == "acc" and gender == "m":
        return stem + ("n" if stem.endswith("e") else "en")
    return stem if stem.endswith("e") else stem + "e"


_DE_ART = {("nom", "m"): "der", ("nom", "f"): "die", ("nom", "n"): "das",
           ("acc", "m"): "den", ("acc", "f"): "die", ("acc", "n"): "das"}


def _pair(rng, sc, label, sent, hedges, negations):
    """Premise from the full scene; hypothesis from a random subset of it, with a hedge
    (neutral), a negation (contradiction) or neither (entailment)."""
    premise = sent(sc.subj_adj, sc.obj_adj, sc.place, sc.time)
    k = _keep(rng, sc)
    args = (sc.subj_adj if k["subj_adj"] else None, sc.obj_adj if k["obj_adj"] else None,
            sc.place if k["place"] else None, sc.time if k["time"] else None)
    if label == ENTAILMENT:
        return premise, sent(*args)
    mode = rng.choice(hedges if label == NEUTRAL else negations)
    return premise, sent(*args, mode=mode)


def _de(rng, sc, label):
    L = _DE

    def np_(noun_g, adj, case):
        noun, g = noun_g
        words = [_DE_ART[(case, g)]]
        if adj:
            words.append(_de_adj(L["adj"][adj], case, g))
        words.append(noun)
        return " ".join(words)

    verb = L["verb"][sc.verb]

    def sent(subj_adj, obj_adj, place, time, mode=None):
        subj = np_(L["subj"][sc.subj], subj_adj, "nom")
        obj = np_(L["obj"][sc.obj], obj_adj, "acc")
        tail = [L["place"][place]] if place else []
        mid = [L["time"][time]] if time else []
        if mode == "vielleicht_front":
            words = ["Vielleicht", verb, subj] + mid + [obj] + tail
        elif mode == "vielleicht":
            words = [subj, verb, "vielleicht"] + mid + [obj] + tail
        elif mode == "nicht":
            words = [subj, verb] + mid + [obj] + tail + ["nicht"]
        elif mode == "nie":
            words = [subj, verb, "nie"] + mid + [obj] + tail
        else:
            words = [subj, verb] + mid + [obj] + tail
        return _cap(" ".join(words)) + "."

    return _pair(rng, sc, label, sent, hedges=("vielleicht", "vielleicht_front"), negations=("nicht", "nie"))


_VOWELS = "aeiouéèêàâîôûh"


def _fr_np(noun_g, adj):
    noun, g = noun_g
    art = "l'" if noun[0] in _VOWELS else ("le " if g == "m" else "la ")
    s = art + noun
    if adj:
        s += " " + _FR["adj"][adj][0 if g == "m" else 1]
    return s


def _fr(rng, sc, label):
    L = _FR
    verb = L["verb"][sc.verb]

    def sent(subj_adj, obj_adj, place, time, mode=None):
        subj = _fr_np(L["subj"][sc.subj], subj_adj)
        obj = _fr_np(L["obj"][sc.obj], obj_adj)
        tail = ([L["place"][place]] if place else []) + ([L["time"][time]] if time else [])
        if mode in ("pas", "jamais"):
            ne = "n'" + verb if verb[0] in _VOWELS else "ne " + verb
            words = [subj, ne, mode, obj] + tail
        elif mode == "pe":
            words = [subj, verb, "peut-être", obj] + tail
        elif mode == "pe_front":
            words = ["peut-être que", subj, verb, obj] + tail
        else:
            words = [subj, verb, obj] + tail
        return _cap(" ".join(words)) + "."

    return _pair(rng, sc, label, sent, hedges=("pe", "pe_front"), negations=("pas", "jamais"))


def _es_np(noun_ga, adj):
    noun, g, art = noun_ga
    s = art + " " + noun
    if adj:
        s += " " + _ES["adj"][adj][0 if g == "m" else 1]
    return s


def _es(rng, sc, label):
    L = _ES
    verb = L["verb"][sc.verb]

    def sent(subj_adj, obj_adj, place, time, mode=None):
        subj = _es_np(L["subj"][sc.subj], subj_adj)
        obj = _es_np(L["obj"][sc.obj], obj_adj)
        tail = ([L["place"][place]] if place else []) + ([L["time"][time]] if time else [])
        if mode in ("no", "nunca", "quizás"):
            words = [subj, mode, verb, obj] + tail
        elif mode == "quizás_front":
            words = ["quizás", subj, verb, obj] + tail
        else:
            words = [subj, verb, obj] + tail
        return _cap(" ".join(words)) + "."

    return _pair(rng, sc, label, sent, hedges=("quizás", "quizás_front"), negations=("no", "nunca"))


def _sw(rng, sc, label):
    L = _SW
    pos, neg = L["verb"][sc.verb]
    # Swahili object adjectives are drawn from an invariable set, keyed by the scene
    # adjective so premise and hypothesis agree.
    obj_adj_word = None
    if sc.obj_adj:
        obj_adj_word = L["object_adj"][sorted(OBJECT_ADJS).index(sc.obj_adj)
                                       % len(L["object_adj"])]

    def sent(subj_adj, obj_adj, place, time, mode=None):
        subj = L["subj"][sc.subj] + (" " + L["person_adj"][subj_adj] if subj_adj else "")
        obj = L["obj"][sc.obj] + (" " + obj_adj_word if obj_adj else "")
        tail = ([L["place"][place]] if place else []) + ([L["time"][time]] if time else [])
        if mode == "hapana":
            words = ["hapana,", subj, neg, obj] + tail
        elif mode == "si":
            words = ["si kweli kwamba", subj, pos, obj] + tail
        elif mode == "labda":
            words = [subj, "labda", pos, obj] + tail
        elif mode == "labda_front":
            words = ["labda", subj, pos, obj] + tail
        else:
            words = [subj, pos, obj] + tail
        return _cap(" ".join(words)) + "."

    return _pair(rng, sc, label, sent, hedges=("labda", "labda_front"), negations=("hapana", "si"))


def _zh(rng, sc, label):
    L = _ZH
    verb = L["verb"][sc.verb]

    def sent(subj_adj, obj_adj, place, time, mode=None):
        subj = (L["adj"][subj_adj] if subj_adj else "") + L["subj"][sc.subj]
        obj = (L["adj"][obj_adj] if obj_adj else "") + L["obj"][sc.obj]
        mid = ([L["time"][time]] if time else []) + ([L["place"][place]] if place else [])
        if mode in ("不", "没有"):
            words = [subj] + mid + [mode, verb, obj]
        elif mode == "也许":
            words = [subj, "也许"] + mid + [verb, obj]
        elif mode == "也许_front":
            words = ["也许", subj] + mid + [verb, obj]
        else:
            words = [subj] + mid + [verb, obj]
        return "".join(words) + "。"

    return _pair(rng, sc, label, sent, hedges=("也许", "也许_front"), negations=("不", "没有"))


def _ar(rng, sc, label):
    L = _AR
    subj_noun, sg = L["subj"][sc.subj]
    obj_noun, og = L["obj"][sc.obj]
    verb = L["verb"][sc.verb]
    if sg == "f":
        verb = "ت" + verb[1:]

    def sent(subj_adj, obj_adj, place, time, mode=None):
        subj = subj_noun + (" " + L["adj"][subj_adj][0 if sg == "m" else 1] if subj_adj else "")
        obj = obj_noun + (" " + L["adj"][obj_adj][0 if og == "m" else 1] if obj_adj else "")
        tail = ([L["place"][place]] if place else []) + ([L["time"][time]] if time else [])
        if mode == "لا":
            words = [subj, "لا", verb, obj] + tail
        elif mode == "ليس":
            words = ["ليس صحيحا أن", subj, verb, obj] + tail
        elif mode == "ربما":
            words = [subj, "ربما", verb, obj] + tail
        elif mode == "ربما_front":
            words = ["ربما", verb, subj, obj] + tail
        else:
            words = [subj, verb, obj] + tail
        return " ".join(words) + "."

    return _pair(rng, sc, label, sent, hedges=("ربما", "ربما_front"), negations=("لا", "ليس"))


_REALISERS = {"en": _en, "de": _de, "fr": _fr, "es": _es, "sw": _sw, "zh": _zh, "ar": _ar}


# ---------------------------------------------------------------------------
# Marker checks
# ---------------------------------------------------------------------------

_STRIP = ".,;:!?。،"


def _words(text: str) -> List[str]:
    out = []
    for w in text.lower().split():
        w = w.strip(_STRIP)
        out.append(w)
        if w.startswith("n'"):  # French elision: n'achète
            out.append("n'")
    return out


def has_marker(text: str, lang: str, markers: Sequence[str]) -> bool:
    """True if ``text`` contains one of ``markers`` (as a word; substring for zh)."""
    if lang == "zh":
        return any(m in text for m in markers)
    words = set(_words(text))
    return any(m in words for m in markers)


def _check(premise: str, hyp: str, lang: str, label: int) -> None:
    hedge = has_marker(hyp, lang, HEDGES[lang])
    neg = has_marker(hyp, lang, NEGATIONS[lang])
    ok = {ENTAILMENT: not hedge and not neg,
          NEUTRAL: hedge and not neg,
          CONTRADICTION: neg and not hedge}[label]
    if not ok or has_marker(premise, lang, HEDGES[lang] + NEGATIONS[lang]):
        raise AssertionError(f"bad synthetic example ({lang}, {label}): {premise!r} / {hyp!r}")


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------

def nli_example(rng: random.Random, lang: str, label: int) -> Dict[str, object]:
    """One example ``{"premise", "hypothesis", "label"}`` for ``lang`` and ``label``."""
    if lang not in _REALISERS:
        raise ValueError(f"unknown language {lang!r}; expected one of {LANGUAGES}")
    if label not in (ENTAILMENT, NEUTRAL, CONTRADICTION):
        raise ValueError(f"label must be 0, 1 or 2, got {label!r}")
    scene = _sample_scene(rng)
    premise, hyp = _REALISERS[lang](rng, scene, label)
    _check(premise, hyp, lang, label)
    return {"premise": premise, "hypothesis": hyp, "label": int(label)}


def nli_examples(n: int, lang: str, seed: int, with_idx: bool = False) -> List[Dict[str, object]]:
    """``n`` examples with balanced labels (counts differ by at most one), shuffled.

    With ``with_idx=True`` each example also gets ``"idx": i`` (MNLI/GLUE schema).
    """
    rng = random.Random(seed)
    labels = [i % 3 for i in range(n)]
    rng.shuffle(labels)
    out = []
    for i, label in enumerate(labels):
        ex = nli_example(rng, lang, label)
        if with_idx:
            ex["idx"] = i
        out.append(ex)
    return out


def _xnli_seed(split: str, lang: str) -> int:
    return 20_000 + 100 * LANGUAGES.index(lang) + {"train": 1, "validation": 2, "test": 3}[split]


def sample_files() -> List[Tuple[str, int, str, int, bool]]:
    """(relative path, n, lang, seed, with_idx) for every bundled sample file."""
    files = [
        ("mnli/train.jsonl", 2400, "en", 10_001, True),
        ("mnli/validation.jsonl", 300, "en", 10_002, True),
        ("xnli/train.en.jsonl", 1200, "en", _xnli_seed("train", "en"), False),
    ]
    for lang in LANGUAGES:
        for split in ("validation", "test"):
            files.append((f"xnli/{split}.{lang}.jsonl", 150, lang, _xnli_seed(split, lang), False))
    return files


def write_files(root: Path, files: Dict[str, str]) -> List[Path]:
    """Write ``{relative path: text}`` under ``root`` as UTF-8 with "\n" line ends (byte-stable
    across platforms, so the bundled files can be checked for identity)."""
    root = Path(root)
    paths = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        paths.append(path)
    return paths


def write_samples(root: Path) -> List[Path]:
    """Write all sample files under ``root`` (e.g. ``.../resources/samples``)."""
    return write_files(root, {
        rel: "".join(json.dumps(r, ensure_ascii=False) + "\n"
                     for r in nli_examples(n, lang, seed, with_idx=with_idx))
        for rel, n, lang, seed, with_idx in sample_files()})


def default_samples_dir() -> Path:
    return Path(__file__).resolve().parent / "samples"


if __name__ == "__main__":  # pragma: no cover
    for p in write_samples(default_samples_dir()):
        print(p)
