"""Inspecting a module with the weight a fusion gives each member, measured by running it:
AdapterFusion attends over the input, so its weights are averaged over task examples (read
through data/, tasks/ and formats/); a LoRA fusion's learned weights need only the model.
What the folder alone says is modules/inspect.py's."""
from __future__ import annotations

from ..errors import AdapterxlError

SPLITS = ("validation", "test", "train")  # where inspect looks for data, in this order


def inspect_module(path: str, data: str | None = None, data_dir: str | None = None,
                   task: str | None = None, language: str = "en", max_examples: int = 64,
                   model: str | None = None) -> dict:
    """A JSON-able description of the module at `path` (a folder or a Hub id), as
    modules.inspect.describe gives it, and for a fusion also `fusion_weights`
    {site: {member: average weight}}, `fusion_average` {member: mean over sites} and
    `fusion_data` saying what they were measured on. AdapterFusion's weights need data
    (`data` hf|samples or `data_dir`): `max_examples` rows of `task` (default the fusion's own
    task) in `language`; without data they are None. Either kind loads the backbone
    (`model`, default the module's own)."""
    from ..hub import resolve_module
    from ..modules.inspect import describe
    from ..modules.store import open_module

    mod = open_module(resolve_module(path))
    result = describe(mod)
    if mod.kind == "fusion":
        result.update(fusion_weights(mod, data, data_dir, task, language, max_examples, model))
    return result


def fusion_weights(mod, data=None, data_dir=None, task=None, language="en", max_examples=64,
                   model=None) -> dict:
    """{fusion_weights, fusion_average, fusion_data} of the fusion `mod` (see
    inspect_module)."""
    from ..backbone import load_backbone
    from ..modules import load_for_inference
    from ..modules.inspect import fusion_engine, member_names

    names = member_names(mod)
    engine = fusion_engine(mod)
    if engine == "bottleneck" and data is None and data_dir is None:
        return {"fusion_weights": None, "fusion_average": None,
                "fusion_data": "AdapterFusion's weights depend on the input: give data "
                               "(--data samples|hf or --data-dir) to measure them"}
    backbone = load_backbone(model or mod.manifest.backbone["id"])
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


def _batches(mod, backbone, data, data_dir, task, language, max_examples):
    from ..data.preprocess import loader
    from ..data.sources import available_languages, load_split
    from ..formats import get_format
    from ..tasks import get_task

    name = task or mod.manifest.all_tasks[0]
    task_ = get_task(name)
    fmt = get_format(task_.format)
    if fmt.head is None or fmt.language:
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
