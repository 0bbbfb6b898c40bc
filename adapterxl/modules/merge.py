"""Merging modules: N modules of one method become one new module, a directory like any other
(stackable, evaluable, fusable).

    bottleneck-type (bottleneck engine) and IA3:  θ = Σ_i w_i θ_i, tensor by tensor
    LoRA:   exact merge of the updates, by concatenating ranks:
            A = [A_1; A_2; ...],  B = [c_1 w_1 B_1, c_2 w_2 B_2, ...]  so that
            s · B A = Σ_i w_i s_i B_i A_i  (s_i = alpha_i / r_i, s the merged scale, c_i = s_i/s)
    DoRA:   refused (its magnitude vector renormalizes W + ΔW, so DoRA modules do not add up)

The weights w_i are used as given: they are not normalized (they need not sum to 1, and may be
negative, e.g. for task arithmetic)."""
from __future__ import annotations

import math
import time
from dataclasses import replace

import torch

from ..errors import AdapterxlError
from .methods import get_method, method_config
from .store import ModuleDir, check_output, open_module, save_module

# LoRA's rank (and alpha, see merge_modules) may differ between the modules merged.
_LORA_FREE = ("r", "alpha")


def merge_modules(paths: list[str], output: str, weights: list[float] | None = None,
                  name: str | None = None, overwrite: bool = False) -> ModuleDir:
    """Merge the modules at `paths` into a new module at `output` (written atomically).

    All must be plain modules (not fusions) of the same method with the same method config
    (LoRA/DoRA rank and alpha excepted), trained on the same backbone (fingerprint) and
    stacked on the same lower modules (same weights); the merged module is stacked on that
    same chain (copies are written into it).

    `weights`: one real number per module, default 1/N each. They are NOT normalized: (2, -1)
    extrapolates, (1, 1) adds the modules up.

    - Bottleneck-type methods (seq_bn, double_seq_bn, par_bn, compacter, prefix, seq_bn_inv)
      and IA3: the weighted sum Σ w_i θ_i of every tensor (the `adapters` library's "linear"
      average_adapter). For bottleneck adapters this is a parameter average, not an average
      of the adapters' outputs (they are nonlinear). For IA3, averaging the scaling vectors
      linearly interpolates the rescalings of keys, values and FFN activations (with weights
      summing to 1; other weights extrapolate them).
    - LoRA: exact. Ranks are concatenated: A = concat_i A_i and B = concat_i (c_i w_i B_i)
      along the rank dimension, so the merged update is Σ_i w_i ΔW_i exactly at every adapted
      projection. The merged rank is r = Σ r_i; alpha is set so that alpha / r equals the
      FIRST module's scale s_1 = alpha_1 / r_1. Modules whose scale s_i differs (other
      alpha/r) are not refused: the ratio c_i = s_i / s_1 is folded into their B_i. With equal
      alpha/r everywhere (the usual case) c_i = 1.
    - DoRA: refused, since its learned magnitude makes a DoRA update depend on W + ΔW as a
      whole: merged DoRA modules are not the sum of their updates.

    Heads: if every module has the same heads (same tasks, head configs and labels), the head
    weights are merged with the same weights; otherwise the first module's head is kept and
    the manifest records `"head_from": <its name>`.

    `output` must not be (or lie inside) one of the modules merged, nor an existing file;
    an existing module there is replaced only with `overwrite`.
    """
    output = check_output(output, paths, overwrite)
    mods = [open_module(p) for p in paths]
    if len(mods) < 2:
        raise AdapterxlError(f"merging needs at least two modules, got {len(mods)}")
    weights = _weights(weights, len(mods))
    first = mods[0]
    _check(mods)
    lower = first.lower()

    tensors = [mod.weights() for mod in mods]
    for mod, t in zip(mods[1:], tensors[1:]):
        _same_tensors(first, tensors[0], mod, t)
    config = dict(first.method_config)
    if first.method == "lora":
        merged, config = _merge_lora(mods, tensors, weights)
    else:
        merged = _weighted_sum(tensors, weights)

    heads = [mod.head_weights() for mod in mods]
    same_heads = all(_head_key(mod) == _head_key(first) for mod in mods) and all(
        _shapes(h) == _shapes(heads[0]) for h in heads)
    head = _weighted_sum(heads, weights) if same_heads else heads[0]
    # The first module's description, less what was measured on it or is about its files.
    manifest = first.manifest.replace(
        name=name or "merge-" + "+".join(mod.name for mod in mods),
        kind="module",
        method=replace(first.manifest.method, config=config),
        init_from=None, metrics=None, head_from=None if same_heads else first.name,
        merged_from=[{"name": mod.name, "task": mod.manifest.task,
                      "path": str(mod.path.resolve()), "sha256": mod.sha256, "weight": w}
                     for mod, w in zip(mods, weights)],
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        files={}, stack=[], stacked_on=[], fused=None)
    return save_module(output, manifest, merged, head, lower)


def _weights(weights, n: int) -> list[float]:
    if weights is None:
        return [1.0 / n] * n
    weights = list(weights)
    if len(weights) != n:
        raise AdapterxlError(f"--weights gives {len(weights)} numbers for {n} modules; "
                             f"give one per module")
    out = []
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise AdapterxlError(f"merge weights must be finite numbers, got {w!r}")
        out.append(float(w))
    return out


def _check(mods: list[ModuleDir]) -> None:
    """Refuse what cannot be merged, naming the module that differs from the first, and how."""
    first = mods[0]
    for mod in mods:
        if mod.kind != "module":
            raise AdapterxlError(f"cannot merge {mod.path}: it is a {mod.kind}; merge plain "
                                 f"modules (merge the fusion's members instead)")
        get_method(mod.method)
        if mod.method == "dora":
            raise AdapterxlError(f"cannot merge {mod.path}: DoRA modules cannot be merged (the "
                                 f"learned magnitude renormalizes W + ΔW, so DoRA updates do "
                                 f"not add up); stack or fuse them instead")
    for mod in mods[1:]:
        if mod.method != first.method:
            raise AdapterxlError(f"cannot merge {mod.path}: its method is {mod.method}, "
                                 f"{first.path} is {first.method}; merge modules of one method")
        if mod.role != first.role:
            raise AdapterxlError(f"cannot merge {mod.path}: it is a {mod.role} module, "
                                 f"{first.path} is a {first.role} module")
        a, b = _config(first), _config(mod)
        if a != b:
            key = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))[0]
            raise AdapterxlError(f"cannot merge {mod.path}: its {first.method} config has "
                                 f"{key}={b.get(key)!r}, {first.path} has {key}={a.get(key)!r}")
        fa, fb = first.manifest.backbone, mod.manifest.backbone
        if fa.get("fingerprint") != fb.get("fingerprint"):
            raise AdapterxlError(f"cannot merge {mod.path}: it was trained on {fb.get('id')} "
                                 f"(fingerprint {fb.get('fingerprint')}), {first.path} on "
                                 f"{fa.get('id')} ({fa.get('fingerprint')})")
        la, lb = _lower_key(first), _lower_key(mod)
        if [sha for _, sha in la] != [sha for _, sha in lb]:
            raise AdapterxlError(f"cannot merge {mod.path}: it is stacked on "
                                 f"{_describe(lb)}, {first.path} on {_describe(la)}; merged "
                                 f"modules must share the modules beneath them")


def _config(mod: ModuleDir) -> dict:
    config = method_config(mod.method, mod.method_config)
    if mod.method == "lora":
        config = {k: v for k, v in config.items() if k not in _LORA_FREE}
    return config


def _lower_key(mod: ModuleDir) -> list[tuple[str, str | None]]:
    return [(m.name, m.sha256) for m in mod.lower()]


def _describe(chain) -> str:
    if not chain:
        return "nothing"
    return " + ".join(f"{name} ({(sha or '?')[:12]})" for name, sha in chain)


def _shapes(state: dict[str, torch.Tensor]) -> dict:
    return {k: tuple(v.shape) for k, v in state.items()}


def _same_tensors(first: ModuleDir, a: dict, mod: ModuleDir, b: dict) -> None:
    if a.keys() != b.keys():
        key = sorted(set(a) ^ set(b))[0]
        raise AdapterxlError(f"cannot merge {mod.path}: its weights do not match "
                             f"{first.path}'s (tensor {key} is in only one of them)")
    if first.method == "lora":
        return  # ranks may differ; _merge_lora checks the other dimension
    for key in a:
        if a[key].shape != b[key].shape:
            raise AdapterxlError(f"cannot merge {mod.path}: tensor {key} has shape "
                                 f"{tuple(b[key].shape)}, {first.path} has {tuple(a[key].shape)}")


def _head_key(mod: ModuleDir):
    tasks = list(mod.heads)
    return mod.heads, [list(mod.labels_for(t)) for t in tasks]


def _weighted_sum(states: list[dict], weights: list[float]) -> dict[str, torch.Tensor]:
    out = {}
    for key in states[0]:
        acc = torch.zeros_like(states[0][key], dtype=torch.float64)
        for state, w in zip(states, weights):
            acc += w * state[key].double()
        out[key] = acc.to(states[0][key].dtype).contiguous()
    return out


def _merge_lora(mods: list[ModuleDir], states: list[dict],
                weights: list[float]) -> tuple[dict[str, torch.Tensor], dict]:
    """Concatenate ranks; see merge_modules. Keys: `<site>.lora_A.{module}.weight` [r, in] and
    `<site>.lora_B.{module}.weight` [out, r]."""
    configs = [method_config("lora", m.method_config) for m in mods]
    ranks = [c["r"] for c in configs]
    scales = [c["alpha"] / c["r"] for c in configs]
    rank = sum(ranks)
    scale = scales[0]
    merged = {}
    for key in states[0]:
        parts = [s[key] for s in states]
        other = 1 if ".lora_A." in key else 0  # the dimension that is not the rank
        for mod, p in zip(mods, parts):
            if p.dim() != 2 or p.shape[other] != parts[0].shape[other]:
                raise AdapterxlError(f"cannot merge {mod.path}: tensor {key} has shape "
                                     f"{tuple(p.shape)}, {mods[0].path} has "
                                     f"{tuple(parts[0].shape)}")
        if ".lora_A." in key:
            merged[key] = torch.cat(parts, dim=0).contiguous()
        elif ".lora_B." in key:
            merged[key] = torch.cat(
                [(w * (s_i / scale) * p.double()).to(p.dtype)
                 for p, w, s_i in zip(parts, weights, scales)], dim=1).contiguous()
        else:
            raise AdapterxlError(f"cannot merge {mods[0].path}: unexpected LoRA tensor {key}")
    alpha = scale * rank
    if float(alpha).is_integer():
        alpha = int(alpha)
    config = dict(configs[0], r=rank, alpha=alpha)
    return merged, config
