"""Build the bundled tiny multilingual tokenizer (``tokenizer/tiny-multilingual.json``).

An XLM-R-style SentencePiece-like tokenizer: Unigram model, NFKC normalizer, Metaspace
pre-tokenizer and decoder, and XLM-R's ``<s> A </s></s> B </s>`` template.  Special
tokens ``<s>``, ``<pad>``, ``</s>``, ``<unk>`` get ids 0..3; ``<mask>`` is added last
(id = model vocabulary size), as in XLM-R; with it the tokenizer has at most
``MAX_TOTAL`` = 2000 tokens, the builtin backbone's vocabulary.  It is trained on all text
of every bundled sample file (``samples/<task>/*.jsonl``: premises and hypotheses, texts,
tagged words, questions, contexts, choices, retrieval queries and candidates; and the raw
text of ``samples/text/*.txt``), so every language and task is covered (plus one seeding
line, see ``_seed_aid``).

Usage::

    python adapterxl/resources/make_tokenizer.py [--samples DIR] [--out FILE]

The output is deterministic (byte-identical across runs): the corpus is read in sorted
file order and the trained vocabulary is canonicalized (see ``_canonicalize``).  Load it with::

    XLMRobertaTokenizerFast(tokenizer_file=..., bos_token="<s>", eos_token="</s>",
                            sep_token="</s>", cls_token="<s>", unk_token="<unk>",
                            pad_token="<pad>", mask_token="<mask>")
"""
from __future__ import annotations

import argparse
import json
import os
import unicodedata
from pathlib import Path
from typing import Iterable, List, Optional

HERE = Path(__file__).resolve().parent
DEFAULT_SAMPLES = HERE / "samples"
DEFAULT_OUT = HERE / "tokenizer" / "tiny-multilingual.json"

# The builtin backbone's embedding matrix has 2000 rows (configs.BUILTIN): the trained
# vocabulary (special tokens included) plus <mask> must fit.
MAX_TOTAL = 2000
VOCAB_SIZE = MAX_TOTAL - 1
SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0..3
MASK_TOKEN = "<mask>"  # added after training: last id

# Text-bearing keys of the canonical sample rows (and of the MNLI/XNLI samples), in the
# order they are read.  Strings are taken as they are; lists of strings (a text pair, the
# choices) give one line per item, except "tokens" (a tagged sentence): its words are
# joined with spaces, the way a tagger's words are pre-tokenized.
TEXT_KEYS = ("premise", "hypothesis", "text", "tokens", "question", "context", "choices",
             "query", "candidate")


def _row_texts(row: dict) -> List[str]:
    out: List[str] = []
    for key in TEXT_KEYS:
        value = row.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            out.append(value)
        elif key == "tokens":
            out.append(" ".join(value))
        else:
            out.extend(str(v) for v in value)
    return out


def sample_texts(samples_dir: Path = DEFAULT_SAMPLES) -> List[str]:
    """All text of every sample file under ``samples_dir``, in sorted path order: the text
    fields of every row of every ``*.jsonl`` and every line of every ``*.txt`` (raw text for
    language modules)."""
    root = Path(samples_dir)
    files = sorted((p for p in root.rglob("*") if p.suffix in (".jsonl", ".txt") and p.is_file()),
                   key=lambda p: p.relative_to(root).as_posix())
    if not any(p.suffix == ".jsonl" for p in files):
        raise FileNotFoundError(f"no *.jsonl sample files under {samples_dir}")
    texts: List[str] = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                if path.suffix == ".txt":
                    texts.append(line.rstrip("\n"))
                else:
                    texts.extend(_row_texts(json.loads(line)))
    return texts


def _is_cjk(word: str) -> bool:
    return any("CJK" in unicodedata.name(c, "") for c in word)


def _strip_punct(word: str) -> str:
    i, j = 0, len(word)
    while i < j and unicodedata.category(word[i]).startswith("P"):
        i += 1
    while j > i and unicodedata.category(word[j - 1]).startswith("P"):
        j -= 1
    return word[i:j]


_SEED_MARK = "-"


def _seed_aid(texts: List[str]) -> List[str]:
    """One extra training line: every space-delimited word type, stripped of leading and
    trailing punctuation, followed by "-".

    ``UnigramTrainer`` seeds its candidate pieces with substrings that occur at least
    twice in the concatenation of the *distinct* pre-tokenized words, so a word that is
    not part of another distinct word (e.g. "▁the") never becomes a candidate and
    gets spelled out in characters.  Listing each word once more with a trailing mark
    makes every word a candidate while barely changing the counts EM fits.  The mark is
    not "." and the words are stripped of punctuation so that a sentence-final "▁word."
    does not become a candidate too: words and their punctuation stay separate pieces
    (an answer span that ends a sentence must end on a token boundary).  CJK text
    (written without spaces, so a "word" is a whole sentence) is left out: seeding
    whole sentences would make them single tokens.
    """
    words = sorted({_strip_punct(w) for t in texts for w in t.split() if not _is_cjk(w)} - {""})
    return [" ".join(w + _SEED_MARK for w in words)] if words else []


_PENALTY_DELTA = 1e-4  # tokenizers' UnigramTrainer spacing for leftover required chars
_DECIMALS = 8


def _canonicalize(tok):
    """Make a freshly trained Unigram vocabulary independent of hash-map iteration order.

    ``UnigramTrainer`` (tokenizers 0.22) is not bit-reproducible: its EM sums over
    hash maps with per-process random seeds (scores differ in the last float digits),
    and the characters it must keep but did not select get scores
    ``min_score + k * 1e-4`` in hash-set order.  Here those characters are re-scored
    in code-point order, every score is rounded, and pieces are sorted by
    (score desc, piece), so equal corpora give byte-identical files.
    """
    from tokenizers import Tokenizer

    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    n_special = len(SPECIAL_TOKENS)
    special, pieces = vocab[:n_special], vocab[n_special:]
    if [p for p, _ in special] != SPECIAL_TOKENS:
        raise RuntimeError(f"unexpected special tokens {special}")
    min_score = min(s for _, s in pieces)
    tail = []
    for piece, score in pieces:
        k = (score - min_score) / _PENALTY_DELTA
        if len(piece) == 1 and abs(k - round(k)) < 1e-6 and round(k) < len(pieces):
            tail.append(piece)
    tail_scores = {c: min_score + i * _PENALTY_DELTA for i, c in enumerate(sorted(tail))}
    canon = [(p, round(tail_scores.get(p, s), _DECIMALS)) for p, s in pieces]
    canon.sort(key=lambda ps: (-ps[1], ps[0]))
    data["model"]["vocab"] = [[p, float(s)] for p, s in special] + [[p, s] for p, s in canon]
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))


def build_tokenizer(texts: Iterable[str], vocab_size: int = VOCAB_SIZE):
    """Train and return a ``tokenizers.Tokenizer`` on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        unk_token="<unk>",
        show_progress=False,
    )
    texts = list(texts)
    tok.train_from_iterator(texts + _seed_aid(texts), trainer=trainer)
    tok = _canonicalize(tok)
    tok.add_special_tokens([MASK_TOKEN])
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    for i, t in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(t) != i:
            raise RuntimeError(f"special token {t!r} got id {tok.token_to_id(t)}, expected {i}")
    if tok.get_vocab_size() > MAX_TOTAL:
        raise RuntimeError(f"tokenizer has {tok.get_vocab_size()} tokens with {MASK_TOKEN}; "
                           f"the builtin backbone has {MAX_TOTAL} embeddings")
    return tok


def write_tokenizer(out: Path = DEFAULT_OUT, samples_dir: Path = DEFAULT_SAMPLES) -> Path:
    """Train on the sample files and write the tokenizer JSON (atomically) to ``out``."""
    tok = build_tokenizer(sample_texts(samples_dir))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = tok.to_str(pretty=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text + "\n")
    os.replace(tmp, out)
    return out


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    print(write_tokenizer(args.out, args.samples))


if __name__ == "__main__":
    main()
