"""What a module directory holds: its composition (bottom first, fusion members as children),
parameter counts, heads, backbone, metrics; and the text `adapterxl inspect` prints. The
weight a fusion gives each member is measured in evaluation/fusion.py (it runs the model)."""
from __future__ import annotations

from ..errors import AdapterxlError
from .methods import engine_name, get_method
from .store import HEAD, WEIGHTS, ModuleDir, sha256


def describe(mod: ModuleDir) -> dict:
    """A JSON-able description of a module, read from its folder alone (no backbone):

    - `composition`: the chain, bottom first; each node {name, task, role, method, engine,
      config, parameters (counted from its safetensors file), sha256, intact (the file
      matches the manifest's sha256)}; a fusion node lists its members under `children`.
    - `heads` {task: config}, `head_parameters`, `backbone`, `metrics`, `parameters` (total of
      the modules and heads), `merged_from` (and `head_from`) for a merged module.

    A fusion's weights need a model (and for AdapterFusion, data): evaluation.fusion adds
    them."""
    composition = [_node(m) for m in mod.chain()]
    head_params = _count(mod, HEAD)
    m = mod.manifest
    result = {
        "name": mod.name,
        "path": str(mod.path),
        "kind": mod.kind,
        "task": m.task,
        "backbone": m.backbone,
        "composition": composition,
        "heads": mod.heads,
        "head_parameters": head_params,
        "parameters": sum(_total(n) for n in composition) + head_params,
        "metrics": m.metrics,
    }
    if m.merged_from:
        result["merged_from"] = m.merged_from
        if m.head_from:
            result["head_from"] = m.head_from
    return result


def _node(mod: ModuleDir) -> dict:
    node = {"name": mod.name, "task": mod.manifest.task, "role": mod.role,
            "kind": mod.kind, "method": mod.method,
            # the engine that runs it now (format-1 manifests recorded "adapters")
            "engine": engine_name(mod.manifest.method.engine or fusion_engine(mod)),
            "config": mod.method_config, "parameters": _count(mod, WEIGHTS),
            "sha256": mod.sha256, "intact": _intact(mod, WEIGHTS)}
    if mod.kind == "fusion":
        node["children"] = [_node(m) for m in mod.fused()]
    return node


def fusion_engine(mod: ModuleDir) -> str | None:
    """The engine of a module, or of a fusion's members."""
    if mod.kind == "fusion":
        members = mod.fused()
        return get_method(members[0].method).engine if members else None
    return get_method(mod.method).engine


def member_names(mod: ModuleDir) -> list[str]:
    """A fusion's members' names, numbered where two share one."""
    names = [m.name for m in mod.fused()]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


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
    expected = mod.manifest.files.get(filename)
    return None if not expected else sha256(mod.path / filename) == expected


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
