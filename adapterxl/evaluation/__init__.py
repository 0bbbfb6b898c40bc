"""Zero-shot evaluation: a module trained on English, scored on every language of its task,
with predictions written in the XTREME submission layout (<task>/test-<lang>.tsv)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .. import _io
from ..backbone import load_backbone
from ..data.preprocess import encode, loader
from ..data.sources import available_languages, load_split
from ..errors import AdapterxlError
from ..modules import load_for_inference, open_module
from ..tasks import check_split, get_task
from .metrics import score


@torch.no_grad()
def predict(model, features: list[dict], tokenizer, batch_size: int = 64) -> np.ndarray:
    """Logits in the order of `features` (batches are length-sorted internally)."""
    model.eval()
    device = model.backbone.device
    dl = loader([{k: v for k, v in f.items() if k != "labels"} for f in features], tokenizer,
                batch_size, shuffle=False, device=device)
    order = [i for batch in dl.batch_sampler for i in batch]
    chunks = []
    for batch in dl:
        batch = {k: v.to(device) for k, v in batch.items()}
        chunks.append(model(**batch)["logits"].float().cpu())
    logits = torch.cat(chunks).numpy()
    out = np.empty_like(logits)
    out[order] = logits
    return out


def evaluate(task: str, module: str, languages="all", data: str = "hf", data_dir=None,
             split: str = "test", output: str | None = None, model: str | None = None,
             precision: str | None = None, quantize: str = "none", batch_size: int = 64,
             max_length: int | None = None, max_examples: int | None = None,
             force: bool = False) -> dict:
    """Evaluate `module` on `task` in each language. Returns per-language scores and their
    average; writes results.json and <task>/<split>-<lang>.tsv under `output`
    (default: <module>/eval)."""
    task_ = get_task(task)
    check_split(split)
    mod = open_module(module)
    wanted = task_.resolve_languages(languages)
    have = set(available_languages(task_, split, data, data_dir))
    langs = [lang for lang in wanted if lang in have]
    skipped = [lang for lang in wanted if lang not in have]
    if not langs:
        raise AdapterxlError(f"no {split} data for {task} in {', '.join(wanted)} "
                             f"(source: {data_dir or data})")
    # A module predicts another task only with the same format and the same labels in the same
    # order (an MNLI module can be scored on XNLI directly).
    if mod.manifest.get("format") != task_.format or mod.manifest["labels"] != list(task_.labels):
        raise AdapterxlError(f"module {module} was trained on {mod.manifest['task']} "
                             f"({mod.manifest.get('format')}, labels "
                             f"{','.join(mod.manifest['labels'])}) and cannot predict {task} "
                             f"({task_.format}, labels {','.join(task_.labels)})")
    backbone = load_backbone(model or mod.manifest["backbone"]["id"], precision, quantize)
    net = load_for_inference(backbone, mod, force=force)
    max_length = max_length or task_.hyperparameters.get("max_length", 256)
    out_dir = Path(output) if output else mod.path / "eval"

    per_language, counts = {}, {}
    start = time.perf_counter()
    for lang in langs:
        rows = load_split(task_, split, lang, data=data, data_dir=data_dir,
                          max_examples=max_examples)
        features = encode(rows, backbone.tokenizer, max_length)
        logits = predict(net, features, backbone.tokenizer, batch_size)
        preds = logits.argmax(-1)
        _io.write_text(out_dir / task / f"{split}-{lang}.tsv",
                       "".join(task_.labels[p] + "\n" for p in preds))
        labels = [r["label"] for r in rows]
        counts[lang] = len(rows)
        # Hidden test labels: predict-only, the submission file is still written.
        if all(label is not None for label in labels):
            per_language[lang] = score(task_.metric, logits, labels)
    scored = list(per_language.values())
    result = {
        "task": task, "split": split, "metric": task_.metric, "module": str(mod.path),
        "stack": [m.name for m in mod.chain()], "backbone": backbone.id,
        "per_language": per_language, "examples": counts,
        "average": sum(scored) / len(scored) if scored else None,
        "skipped_languages": skipped, "seconds": round(time.perf_counter() - start, 2),
        "predictions": str(out_dir / task),
    }
    _io.write_json(out_dir / "results.json", result)
    return result


def format_table(result: dict) -> str:
    """Per-language scores (x100) and the average, as a markdown table."""
    per = result["per_language"]
    langs = list(per)
    head = "| " + " | ".join(["task"] + langs + ["avg"]) + " |"
    rule = "|" + "---|" * (len(langs) + 2)
    avg = result["average"]
    row = "| " + " | ".join([result["task"]] + [f"{100 * per[lang]:.1f}" for lang in langs]
                            + ["-" if avg is None else f"{100 * avg:.1f}"]) + " |"
    lines = [head, rule, row]
    if result.get("skipped_languages"):
        lines.append(f"(no {result['split']} data for: {', '.join(result['skipped_languages'])})")
    return "\n".join(lines)
