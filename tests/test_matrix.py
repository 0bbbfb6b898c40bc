"""The method x composition x architecture matrix.

Every method in every composition runs, forward and backward, on every architecture's tiny
builtin (xlm-roberta, xlm-roberta-xl, mT5 encoder, deberta-v2, bert, llama, qwen2):

  single  one trainable module;
  stack   a frozen lower module under a trainable top module (same method, plus the mixed
          pairs seq_bn_inv under lora, seq_bn under lora, lora under seq_bn);
  fuse    two frozen members under a trainable fusion (fusable methods; fusing a
          non-fusable one must be refused).

Per case, where `architectures.unsupported` lists the combination, building the model must
raise AdapterxlError naming the method and the architecture, before anything is injected
(and `train_module` refuses it before writing anything). Otherwise, with every module
perturbed away from its (often identity or zero) initialisation: the loss is finite; exactly
the top slot/fusion and the head are trainable, and the top gets a non-zero gradient; no
frozen module and no backbone parameter gets one; save_module -> load_for_inference on a
fresh backbone gives the in-memory model's eval logits bit for bit, all frozen; and, for a
stack, the same top module and head without the lower module give other logits. par_bn stacked with another bottleneck-type module is refused
(as in AdapterHub, a parallel adapter restarts from the sublayer input inside a stack, so the
module below would be silently ignored).

The full cross product runs on every architecture (no reduced set): 210 cases, ~30 s on
2 CPU cores. Tiny builtins load in ~20 ms, so each case builds fresh backbones (modules are
injected in place); torch runs single-threaded here (see `_one_thread`).
"""
from __future__ import annotations

import math

import pytest
import torch

from adapterxl.architectures import unsupported
from adapterxl.backbone import load_backbone
from adapterxl.errors import AdapterxlError
from adapterxl.heads import head_config
from adapterxl.modules import (METHODS, Fusion, ModularModel, load_for_inference, open_module,
                               save_module)
from conftest import batch, logits


@pytest.fixture(autouse=True)
def _one_thread():
    """Intra-op threads only slow these tiny models down, and on a shared 2-core CI runner
    oversubscription made the file ~4x slower (measured: 65 s vs 14 s for a fifth of it)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

ARCHS = {"xlmr": "xlm-roberta", "xlmr-xl": "xlm-roberta-xl", "mt5": "mt5",
         "deberta": "deberta-v2", "bert": "bert", "llama": "llama", "qwen2": "qwen2"}
# Compacter's phm_dim (4) must divide hidden/reduction_factor: 64/4 = 16. Prefixes are kept
# short to keep the matrix fast.
CONFIGS = {"compacter": {"reduction_factor": 4}, "prefix": {"prefix_length": 4,
                                                            "bottleneck_size": 32}}
MIXED = [("seq_bn_inv", "lora"), ("seq_bn", "lora"), ("lora", "seq_bn")]
N = 6
LABELS = torch.tensor([i % 3 for i in range(N)])


def _backbone(arch: str):
    return load_backbone(f"builtin:tiny-{arch}", device="cpu")


def _config(method: str) -> dict:
    return dict(CONFIGS.get(method, {}))


def _library_id(method: str) -> str:
    from adapterxl.modules import get_method

    return get_method(method).library_id or method


def _why(arch: str, methods) -> str | None:
    for m in methods:
        if (why := unsupported(ARCHS[arch], _library_id(m))) is not None:
            return why
    return None


def _params_of(model: ModularModel, slot) -> dict[str, torch.nn.Parameter]:
    """A slot's (or fusion's) parameters, found by name independently of the model's own
    bookkeeping."""
    if isinstance(slot, Fusion) and slot.engine == "peft":
        return dict(model.lora_fusion.named_parameters())
    return {n: p for n, p in model.encoder.named_parameters() if slot.name in n.split(".")}


def _perturb(model: ModularModel, slot, seed: int) -> None:
    """Move every weight of the slot off its initialisation (LoRA B, par_bn's up-projection,
    fusion logits start at zero; IA3 at one), so that a lost, misplaced or inactive tensor
    changes the logits."""
    g = torch.Generator().manual_seed(seed)
    params = _params_of(model, slot)
    assert params, f"{slot.name} has no parameters"
    with torch.no_grad():
        for p in params.values():
            p.add_(torch.randn(p.shape, generator=g) * 0.2)


def _manifest(model: ModularModel, slot, name: str) -> dict:
    if isinstance(slot, Fusion):
        method = {"name": "fusion", "engine": slot.engine,
                  "config": {"members": len(slot.members)}}
    else:
        method = {"name": slot.method, "engine": slot.engine, "config": slot.config}
    return {"name": name, "kind": "fusion" if isinstance(slot, Fusion) else "module",
            "task": name, "format": "pair_classification",
            "labels": ["entailment", "neutral", "contradiction"],
            "backbone": model.backbone.describe(), "method": method,
            "head": model.head_config}


def _save(model, slot, path, name, lower=(), fused=()):
    return save_module(path, _manifest(model, slot, name), model.module_state(slot),
                       model.head_state(), list(lower), fused=list(fused))


def _build(arch: str, composition: str, lower: str, top: str):
    """The model, its trainable top, and its frozen modules (stack levels or fusion members)."""
    bb = _backbone(arch)
    model = ModularModel(bb, methods=[lower] + ([] if top == "fusion" else [top]))
    if composition == "single":
        frozen = []
    elif composition == "stack":
        frozen = [model.add_module(lower, _config(lower), trainable=False)]
    else:
        frozen = [model.add_module(lower, _config(lower), trainable=False, fused=True)
                  for _ in range(2)]
    for i, slot in enumerate(frozen):
        _perturb(model, slot, seed=10 + i)
    if composition == "fuse":
        trainable = model.add_fusion(frozen, trainable=True)
    else:
        trainable = model.add_module(top, _config(top), trainable=True)
    _perturb(model, trainable, seed=20)
    model.set_head(head_config("classification", 64, 3, bb.pooling))
    return model, trainable, frozen


def _cases():
    for arch in ARCHS:
        for m in METHODS:
            yield pytest.param(arch, "single", m, m, id=f"{arch}-single-{m}")
        for m in METHODS:
            yield pytest.param(arch, "stack", m, m, id=f"{arch}-stack-{m}")
        for lower, top in MIXED:
            yield pytest.param(arch, "stack", lower, top, id=f"{arch}-stack-{lower}-under-{top}")
        for m in METHODS:
            yield pytest.param(arch, "fuse", m, "fusion", id=f"{arch}-fuse-{m}")


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("arch,composition,lower,top", list(_cases()))
def test_matrix(tmp_path, arch, composition, lower, top):
    methods = [top] if composition == "single" else [lower] + ([] if top == "fusion" else [top])
    why = _why(arch, methods)
    if why is not None:
        # Refused at build time, naming method and architecture, before anything is injected.
        bb = _backbone(arch)
        with pytest.raises(AdapterxlError) as err:
            _build_on(bb, composition, lower, top)
        message = str(err.value)
        bad = next(m for m in methods if unsupported(ARCHS[arch], _library_id(m)))
        assert bad in message and ARCHS[arch] in message, message
        assert not any("axl" in n for n, _ in bb.model.named_parameters())
        return
    if composition == "stack" and "par_bn" in (lower, top) and \
            METHODS[lower].engine == METHODS[top].engine == "bottleneck":
        with pytest.raises(AdapterxlError, match="par_bn cannot be stacked"):
            _build(arch, composition, lower, top)
        return
    if composition == "fuse" and not METHODS[lower].fusable:
        with pytest.raises(AdapterxlError, match=f"{lower} modules cannot be fused"):
            _build(arch, composition, lower, top)
        return

    model, trainable, frozen = _build(arch, composition, lower, top)
    inputs = batch(model.backbone, n=N)

    # ---- forward + backward: gradients only into the trainable slot/fusion and the head ----
    model.train()
    out = model(**inputs, labels=LABELS)
    assert math.isfinite(out["loss"].item())
    out["loss"].backward()
    allowed = {id(p) for p in _params_of(model, trainable).values()}
    allowed |= {id(p) for p in model.heads.parameters()}
    assert allowed
    names = dict(model.named_parameters())
    requires = {n for n, p in names.items() if p.requires_grad}
    assert requires and all(id(names[n]) in allowed for n in requires), (
        sorted(n for n in requires if id(names[n]) not in allowed)[:5])
    assert {id(names[n]) for n in requires} == allowed
    leaked = [n for n, p in names.items() if id(p) not in allowed and p.grad is not None]
    assert not leaked, leaked[:5]
    top_grads = [n for n, p in _params_of(model, trainable).items()
                 if p.grad is not None and p.grad.abs().sum() > 0]
    assert top_grads, f"no gradient reached {trainable.name}"
    model.zero_grad(set_to_none=True)

    expected = logits(model, inputs)
    assert torch.isfinite(expected).all()

    # ---- save -> load_for_inference on a fresh backbone: identical logits ----
    if composition == "single":
        saved = _save(model, trainable, tmp_path / "top", "top")
    elif composition == "stack":
        low = _save(model, frozen[0], tmp_path / "lower", "lower")
        saved = _save(model, trainable, tmp_path / "top", "top", lower=[open_module(low.path)])
    else:
        members = [open_module(_save(model, m, tmp_path / f"member{i}", f"member{i}").path)
                   for i, m in enumerate(frozen)]
        saved = _save(model, trainable, tmp_path / "top", "top", fused=members)
    loaded = load_for_inference(_backbone(arch), open_module(saved.path))
    got = logits(loaded, inputs)
    # Bit for bit, AdapterFusion included (the native engine stacks the members' outputs
    # contiguously; the adapters library's permuted tensor made the CPU GEMM differ in the
    # last bits between identical models).
    assert torch.equal(got, expected), (got - expected).abs().max()
    assert not [n for n, p in loaded.named_parameters() if p.requires_grad]

    # ---- the frozen lower module is active: without it the logits differ ----
    if composition == "stack":
        alone = ModularModel(_backbone(arch), methods=[top])
        slot = alone.add_module(top, trainable.config, trainable=True)
        alone.load_module_state(slot, model.module_state(trainable), "top")
        alone.set_head(model.head_config, model.head_state())
        assert not torch.allclose(logits(alone, inputs), expected, atol=1e-4), (
            "the lower module has no effect")


def _build_on(bb, composition: str, lower: str, top: str):
    """`_build`'s construction steps on a given backbone, stopping at the first error."""
    model = ModularModel(bb, methods=[lower] + ([] if top == "fusion" else [top]))
    if composition == "single":
        model.add_module(top, _config(top), trainable=True)
    elif composition == "stack":
        model.add_module(lower, _config(lower), trainable=False)
        model.add_module(top, _config(top), trainable=True)
    else:
        members = [model.add_module(lower, _config(lower), trainable=False, fused=True)
                   for _ in range(2)]
        model.add_fusion(members, trainable=True)
    return model


def test_matrix_covers_every_method_and_architecture():
    from adapterxl.architectures import ARCHS as TABLE

    assert set(ARCHS.values()) == set(TABLE)
    ids = {(p.values[0], p.values[1], p.values[2]) for p in _cases()}
    for arch in ARCHS:
        for m in METHODS:
            assert (arch, "single", m) in ids and (arch, "stack", m) in ids
            assert (arch, "fuse", m) in ids


def test_unsupported_method_is_refused_before_training(tmp_path):
    from adapterxl.training import TrainConfig, train_module

    cfg = TrainConfig(task="xnli", output=str(tmp_path / "out"), model="builtin:tiny-qwen2",
                      data="samples", method="prefix", max_steps=1, batch_size=4,
                      max_length=32)
    with pytest.raises(AdapterxlError, match="prefix.*qwen2"):
        train_module(cfg, progress=False)
    assert not (tmp_path / "out").exists()
