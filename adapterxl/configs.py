"""What a backbone is, before any weights: the builtin and published shapes, reading a config
(`load_config`), the bare model adapterxl builds from a config (`build_model`, `meta_model`),
which of its Linears transformers leaves unquantized, and the precision / quantization
vocabularies. `backbone.py` (loading weights) and `planning.py` (the cost model) both read
these facts from here.

Imports neither torch nor transformers at module level: the recipe checks use the
vocabularies, and `adapterxl --help` stays quick."""
from __future__ import annotations

import contextlib
import json
import re
import warnings
from pathlib import Path
from typing import get_args

from .errors import AdapterxlError, unknown
from .settings import Precision, Quantize

# Declared once, as TrainConfig's field types (settings.py); these are their values.
PRECISIONS: tuple[str, ...] = get_args(Precision)
QUANTIZE: tuple[str, ...] = get_args(Quantize)


def torch_dtype(precision: str):
    """The torch dtype of a precision name ("fp32", "bf16", "fp16")."""
    import torch

    if precision not in PRECISIONS:
        raise unknown("precision", precision, PRECISIONS)
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


# ---------------------------------------------------------------------------------- shapes
# Tiny random-init backbones built from real architecture classes, so tests and the quickstart
# run the same code path as real checkpoints (backbone.builtin_path materializes them; bump
# backbone.BUILTIN_VERSION when a shape here changes: the weights' fingerprint changes with
# it). Their heads mean-pool: in a random encoder the first token's output hardly depends on
# the input (measured: its std across examples is ~0.3% of a token's), so a first-token head
# could learn nothing.
BUILTIN = {
    "tiny-xlmr": dict(
        model_type="xlm-roberta", vocab_size=2000, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=128, max_position_embeddings=258,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, type_vocab_size=1,
    ),
    # One per supported architecture (adapterxl.architectures), so every architecture's module
    # names, adapter hooks and pooling are exercised by the tests without a download. They
    # share tiny-xlmr's tokenizer, hence its vocabulary and special token ids.
    "tiny-xlmr-xl": dict(
        model_type="xlm-roberta-xl", vocab_size=2000, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=128, max_position_embeddings=258,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, type_vocab_size=1,
    ),
    "tiny-mt5": dict(
        model_type="mt5", vocab_size=2000, d_model=64, d_kv=16, d_ff=128, num_layers=2,
        num_heads=4, relative_attention_num_buckets=32, pad_token_id=1, eos_token_id=2,
        decoder_start_token_id=1, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
    ),
    "tiny-deberta": dict(  # mDeBERTa-v3's shape: relative positions only, no absolute ones
        model_type="deberta-v2", vocab_size=2000, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=128, max_position_embeddings=258,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, type_vocab_size=0,
        relative_attention=True, position_buckets=32, max_relative_positions=-1,
        pos_att_type=["p2c", "c2p"], position_biased_input=False, norm_rel_ebd="layer_norm",
        share_att_key=True,
    ),
    "tiny-bert": dict(
        model_type="bert", vocab_size=2000, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=4, intermediate_size=128, max_position_embeddings=258,
        pad_token_id=1, type_vocab_size=2,
    ),
    # num_key_value_heads < num_attention_heads: grouped-query attention, so k/v projections
    # are narrower than q (as in real Llama/Qwen2 checkpoints) and adapters must cope.
    "tiny-llama": dict(
        model_type="llama", vocab_size=2000, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
        max_position_embeddings=258, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        tie_word_embeddings=False,
    ),
    "tiny-qwen2": dict(
        model_type="qwen2", vocab_size=2000, hidden_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, intermediate_size=128,
        max_position_embeddings=258, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        tie_word_embeddings=False,
    ),
}

# The published configs' shapes (the fields that matter) of the backbones adapterxl is made
# for, so that these plan (and benchmark) without a download, also offline.
_XLMR = dict(max_position_embeddings=514, type_vocab_size=1, pad_token_id=1)
PUBLISHED = {
    "xlm-roberta-base": dict(model_type="xlm-roberta", vocab_size=250002, hidden_size=768,
                             num_hidden_layers=12, num_attention_heads=12,
                             intermediate_size=3072, **_XLMR),
    "xlm-roberta-large": dict(model_type="xlm-roberta", vocab_size=250002, hidden_size=1024,
                              num_hidden_layers=24, num_attention_heads=16,
                              intermediate_size=4096, **_XLMR),
    "facebook/xlm-roberta-xl": dict(model_type="xlm-roberta-xl", vocab_size=250880,
                                    hidden_size=2560, num_hidden_layers=36,
                                    num_attention_heads=32, intermediate_size=10240, **_XLMR),
    "facebook/xlm-roberta-xxl": dict(model_type="xlm-roberta-xl", vocab_size=250880,
                                     hidden_size=4096, num_hidden_layers=48,
                                     num_attention_heads=32, intermediate_size=16384, **_XLMR),
    "google/mt5-xxl": dict(model_type="mt5", vocab_size=250112, d_model=4096, d_ff=10240,
                           num_layers=24, num_decoder_layers=24, num_heads=64, d_kv=64,
                           feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                           relative_attention_num_buckets=32, dropout_rate=0.1,
                           pad_token_id=0, eos_token_id=1, decoder_start_token_id=0),
    "meta-llama/Llama-2-13b-hf": dict(model_type="llama", vocab_size=32000, hidden_size=5120,
                                      intermediate_size=13824, num_hidden_layers=40,
                                      num_attention_heads=40, num_key_value_heads=40,
                                      max_position_embeddings=4096, pad_token_id=0,
                                      bos_token_id=1, eos_token_id=2),
}


# ---------------------------------------------------------------------------------- configs
def config_from_spec(spec: dict):
    """A transformers config from a shape dict with a model_type (BUILTIN, PUBLISHED, a
    config.json's contents)."""
    from transformers import AutoConfig

    spec = dict(spec)
    return AutoConfig.for_model(spec.pop("model_type"), **spec)


def load_config(model: str, trust_remote_code: bool = False):
    """A transformers config from `builtin:<name>`, a config.json file, a checkpoint directory,
    or a Hub id (its config.json only: from the local Hub cache, or downloaded; never weights;
    the backbones in PUBLISHED need neither)."""
    from transformers import AutoConfig

    if model in PUBLISHED:
        return config_from_spec(PUBLISHED[model])
    try:
        if model.startswith("builtin:"):
            name = model.split(":", 1)[1]
            if name not in BUILTIN:
                raise unknown("builtin backbone", name, BUILTIN)
            return config_from_spec(BUILTIN[name])
        path = Path(model).expanduser()
        if path.is_file():
            try:
                spec = json.loads(path.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
                raise AdapterxlError(f"cannot read config {model!r}: {e}") from e
            if not isinstance(spec, dict) or "model_type" not in spec:
                raise AdapterxlError(f"config {model!r} has no model_type")
            return config_from_spec({k: v for k, v in spec.items()
                                     if k not in ("transformers_version",)})
        if model.startswith((".", "/", "~")) and not path.exists():
            raise AdapterxlError(f"config path {model!r} does not exist")
        if path.is_dir() and not (path / "config.json").exists():
            raise AdapterxlError(f"{model!r} has no config.json")
        config = AutoConfig.from_pretrained(str(path) if path.is_dir() else model,
                                            trust_remote_code=trust_remote_code)
    except AdapterxlError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AdapterxlError(f"cannot read the config of {model!r}: {first}") from e
    return config


# ---------------------------------------------------------------------------------- models
# Encoders whose bare model takes add_pooling_layer: our heads pool themselves. (deberta-v2,
# mt5 and the decoders have no pooler and would refuse the argument.)
POOLER_KWARG = {"bert", "roberta", "xlm-roberta", "xlm-roberta-xl"}

# AutoModel maps T5-family configs to the encoder-decoder model, which needs decoder inputs and
# carries a decoder we would never train; we want the encoder stack alone. Real checkpoints
# (google/mt5-base) hold both stacks; the encoder class loads its half and skips the rest.
ENCODER_ONLY = {"mt5": "MT5EncoderModel", "t5": "T5EncoderModel", "umt5": "UMT5EncoderModel"}


def model_class(model_type: str) -> type:
    """The transformers class adapterxl loads a backbone of this type with."""
    import transformers

    if model_type in ENCODER_ONLY:
        return getattr(transformers, ENCODER_ONLY[model_type])
    return transformers.AutoModel


def model_kwargs(model_type: str) -> dict:
    """What adapterxl passes when it builds or loads the bare model: no pooler."""
    return {"add_pooling_layer": False} if model_type in POOLER_KWARG else {}


@contextlib.contextmanager
def quiet():
    """transformers' logging and Python's warnings off while a model is built from a config."""
    from .logs import hf_quiet

    with hf_quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def build_model(config, precision: str | None = None, device=None):
    """The bare backbone as adapterxl loads it (no pooler; T5: the encoder alone), built from
    `config` with transformers' fresh initialisation (drawn from the global RNG). Parameters
    are created directly in `precision`'s dtype (default: torch's, fp32) on `device` (default:
    torch's), so a large model never exists in fp32, and on "meta" takes no memory."""
    import torch

    cls = model_class(config.model_type)
    kwargs = model_kwargs(config.model_type)
    if precision is not None:
        kwargs["dtype"] = torch_dtype(precision)
    # AutoModel.from_config ends in the concrete class's _from_config; only Auto has it.
    build = cls.from_config if hasattr(cls, "from_config") else cls._from_config
    with quiet(), (torch.device(device) if device is not None else contextlib.nullcontext()):
        return build(config, **kwargs)


def meta_model(config, precision: str = "bf16"):
    """The bare backbone on the meta device: exact shapes and dtypes, no memory."""
    return build_model(config, precision, "meta")


# ---------------------------------------------------------------------------------- quantization
def not_converted(model, quantize: str, precision: str) -> tuple[list, list]:
    """(modules transformers does not quantize, modules it keeps in fp32), as its bitsandbytes
    quantizer decides for this model."""
    keep = list(getattr(model, "_keep_in_fp32_modules", None) or [])
    keep = keep if (quantize != "none" or precision == "fp16") else []
    skip = []
    if quantize != "none":
        try:
            from transformers.quantizers.base import get_keys_to_not_convert
        except ImportError:  # transformers 4
            from transformers.integrations import get_keys_to_not_convert

        with quiet():
            skip = list(get_keys_to_not_convert(model))
    return skip + keep, keep


def matches(name: str, keys: list[str]) -> bool:
    """Whether module `name` is one of `keys` or inside one (dotted-name components)."""
    return any(re.search(rf"(^|\.){re.escape(k)}($|\.)", name) for k in keys)
