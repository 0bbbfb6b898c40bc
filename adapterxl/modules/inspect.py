"""What a module directory holds: its composition (bottom first, fusion members as children),
parameter counts, heads, backbone, metrics, and for a fusion the weight each member gets."""
from __future__ import annotations

from ..errors import AdapterxlError
from .methods import engine_name, get_method
from .store import HEAD, WEIGHTS, ModuleDir, open_module, sha256

SPLITS = ("validation", "test", "train")  # where inspect looks for data, in this order


def inspect_module(path: str, data: str | None = None, data_dir: str | None = None,
                   task: str | None = None, language: str = "en", max_examples: int = 64,
                   model: str | None = None) -> dict:
    """A JSON-able description of the module at `path`:

    - `composition`: the chain, bottom first; each node {name, task, role, method, engine,
      config, parameters (counted from its safetensors file, no backbone needed), sha256,
      intact (the file matches the manifest's sha256)}; a fusion node lists its members under
      `children`.
    - `heads` {task: config}, `head_parameters`, `backbone`, `metrics`, `parameters` (total of
      the modules and heads), `merged_from` for a merged module.
    - for a fusion, `fusion_weights` {site: {member: average weight}} and `fusion_average`
      {member: mean over sites}, and `fusion_data` saying what they were measured on.
      AdapterFusion attends over the input, so its weights need data (`data` hf|samples or
      `data_dir`): `max_examples` rows of `task` (default the fusion's own task) in
      `language`; without data they are None. LoRA fusion weights are input-independent.
      Either loads the backbone (`model`, default the module's own)."""
    mod = open_module(path)
    chain = mod.chain()
    composition = [_node(m) for m in chain]
    head_params = _count(mod, HEAD)
    result = {
        "name": mod.name,
        "path": str(mod.path),
        "kind": mod.kind,
        "task": mod.manifest["task"],
        "backbone": mod.manifest["backbone"],
        "composition": composition,
        "heads": mod.heads,
        "head_parameters": head_params,
        "parameters": sum(_total(n) for n in composition) + head_params,
        "metrics": mod.manifest.get("metrics"),
    }
    if mod.manifest.get("merged_from"):
        result["merged_from"] = mod.manifest["merged_from"]
        if mod.manifest.get("head_from"):
            result["head_from"] = mod.manifest["head_from"]
    if mod.kind == "fusion":
        result.update(_fusion_weights(mod, data, data_dir, task, language, max_examples, model))
    return result


def _node(mod: ModuleDir) -> dict:
    node = {"name": mod.name, "task": mod.manifest["task"], "role": mod.role,
            "kind": mod.kind, "method": mod.method,
            # the engine that runs it now (format-1 manifests recorded "adapters")
            "engine": engine_name(mod.manifest["method"].get("engine") or _engine(mod)),
            "config": mod.method_config, "parameters": _count(mod, WEIGHTS),
            "sha256": mod.manifest.get("files", {}).get(WEIGHTS),
            "intact": _intact(mod, WEIGHTS)}
    if mod.kind == "fusion":
        node["children"] = [_node(m) for m in mod.fused()]
    return node


def _engine(mod: ModuleDir) -> str | None:
    if mod.kind == "fusion":
        members = mod.fused()
        return get_method(members[0].method).engine if members else None
    return get_method(mod.method).engine


def _total(node: dict) -> int:
    return node["parameters"] + sum(_total(c) for c in node.get("children", []))


def _count(mod: ModuleDir, filename: str) -> int:
    """Number of values in a safetensors file, from its header (no tensor is loaded)."""
    from safetensors import SafetensorError, safe_open

    file = mod.path / filename
    if not file.exists():
        raise AdapterxlError(f"module {mod.path}: {filename} is missing")
    try:
        with safe_open(str(file), framework="pt") as f:
            total = 0
            for key in f.keys():
                n = 1
                for d in f.get_slice(key).get_shape():
                    n *= d
                total += n
            return total
    except (SafetensorError, OSError, ValueError) as e:
        raise AdapterxlError(f"module {mod.path}: {filename} is not a readable safetensors "
                             f"file ({e})") from e


def _intact(mod: ModuleDir, filename: str) -> bool | None:
    expected = mod.manifest.get("files", {}).get(filename)
    return None if not expected else sha256(mod.path / filename) == expected


def _member_names(mod: ModuleDir) -> list[str]:
    names = [m.name for m in mod.fused()]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


def _fusion_weights(mod: ModuleDir, data, data_dir, task, language, max_examples,
                    model) -> dict:
    from ..backbone import load_backbone
    from . import load_for_inference

    names = _member_names(mod)
    engine = _engine(mod)
    if engine == "bottleneck" and data is None and data_dir is None:
        return {"fusion_weights": None, "fusion_average": None,
                "fusion_data": "AdapterFusion's weights depend on the input: give data "
                               "(--data samples|hf or --data-dir) to measure them"}
    backbone = load_backbone(model or mod.manifest["backbone"]["id"])
    net = load_for_inference(backbone, mod)
    if engine == "bottleneck":
        batches, described = _batches(mod, backbone, data or "hf", data_dir, task, language,
                                      max_examples)
        raw = net.fusion_weights(batches)
    else:
        raw, described = net.fusion_weights(), "learned (input-independent)"
    sites = {site: {n: float(w) for n, w in zip(names, weights.tolist())}
             for site, weights in raw.items()}
    average = {n: sum(s[n] for s in sites.values()) / len(sites) for n in names} if sites \
        else {}
    return {"fusion_weights": sites, "fusion_average": average, "fusion_data": described}


def _batches(mod: ModuleDir, backbone, data, data_dir, task, language, max_examples):
    from ..data.preprocess import loader
    from ..data.sources import available_languages, load_split
    from ..formats import get_format
    from ..tasks import get_task

    name = task or (mod.manifest.get("tasks") or [mod.manifest["task"]])[0]
    task_ = get_task(name)
    fmt = get_format(task_.format)
    if fmt.head is None or task_.format == "mlm":
        raise AdapterxlError(f"inspect measures fusion weights on a task with labeled "
                             f"examples; {name} is a {task_.format} task: pick one with --task")
    split = next((s for s in SPLITS
                  if language in available_languages(task_, s, data, data_dir)), None)
    if split is None:
        raise AdapterxlError(f"no {name} data in {language!r} (source: {data_dir or data}); "
                             f"choose --task, --language or --data")
    rows = load_split(task_, split, language, data=data, data_dir=data_dir,
                      max_examples=max_examples)
    max_length = task_.hyperparameters.get("max_length", 256)
    features = fmt.encode(rows, backbone.tokenizer, max_length, False, task_)
    device = backbone.device
    dl = loader(features, backbone.tokenizer, 16, shuffle=False, device=device)
    batches = [{k: v.to(device) for k, v in b.items() if k != "labels"} for b in dl]
    return batches, (f"attention averaged over the tokens of {len(rows)} {name} {split} "
                     f"examples in {language} ({data_dir or data})")


# ---- text ----------------------------------------------------------------------------------
def human(n: int) -> str:
    """1234 -> 1.2K, 1_234_567 -> 1.2M."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _config_text(config: dict) -> str:
    return " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                    for k, v in config.items() if v not in ([], None))


def format_inspection(result: dict) -> str:
    """A readable tree (bottom first) with parameter counts, heads, metrics, and a table of
    fusion weights."""
    b = result["backbone"]
    lines = [f"{result['name']} ({result['kind']}, task {result['task']}) at {result['path']}",
             f"backbone: {b.get('id')} (fingerprint {b.get('fingerprint')})",
             f"parameters: {human(result['parameters'])} in all "
             f"(heads {human(result['head_parameters'])})",
             "composition, bottom first:"]

    def node_lines(node: dict, first: str, indent: str) -> None:
        """`first` starts the node's line; `indent` starts its children's lines."""
        flag = "" if node.get("intact") is not False else "  CORRUPTED (sha256 differs)"
        what = (f"{node['method']} ({node['engine']})" if node["kind"] != "fusion"
                else f"fusion of {len(node.get('children', []))} ({node['engine']})")
        cfg = _config_text(node["config"])
        lines.append(f"{first}{node['name']:<16} {node['role']:<8} {what:<22} "
                     f"{human(node['parameters']):>7} params  "
                     f"sha256 {(node.get('sha256') or '?')[:12]}{flag}"
                     + (f"  [{cfg}]" if cfg else ""))
        children = node.get("children", [])
        for i, child in enumerate(children):
            last = i == len(children) - 1
            node_lines(child, indent + ("└─ " if last else "├─ "),
                       indent + ("   " if last else "│  "))

    for i, node in enumerate(result["composition"]):
        first = f"  {i}. "
        node_lines(node, first, " " * len(first))
    for task, cfg in result["heads"].items():
        text = _config_text(cfg) if cfg else "none (head-less; stack it)"
        lines.append(f"head {task}: {text}")
    if result.get("merged_from"):
        lines.append("merged from: " + ", ".join(f"{m['name']} × {m['weight']:g}"
                                                 for m in result["merged_from"])
                     + (f" (head of {result['head_from']})" if result.get("head_from") else ""))
    metrics = result.get("metrics") or {}
    if metrics.get("dev"):
        dev = ", ".join(f"{k} {v:.4f}" for k, v in metrics["dev"].items()
                        if isinstance(v, (int, float)))
        lines.append(f"dev: {dev}")
    if result["kind"] == "fusion":
        lines.append(f"fusion weights: {result.get('fusion_data')}")
        sites = result.get("fusion_weights")
        if sites:
            names = list(result["fusion_average"])
            width = max(len("average"), *(len(s) for s in sites))
            lines.append("  " + " " * width + "".join(f" {n[:10]:>10}" for n in names))
            for site, weights in sites.items():
                lines.append(f"  {site:<{width}}" + "".join(f" {weights[n]:>10.3f}"
                                                           for n in names))
            lines.append(f"  {'average':<{width}}" + "".join(
                f" {result['fusion_average'][n]:>10.3f}" for n in names))
    return "\n".join(lines)
