"""The offline quickstart: intermediate module (MNLI) -> target module stacked on it (XNLI)
-> zero-shot evaluation in every sample language, on bundled samples. By default on
builtin:tiny-xlmr (random weights: fast, shows the mechanics); with builtin:e5-small (real
pretrained weights, the e5 extra) it shows real transfer."""
from __future__ import annotations

from pathlib import Path

from .backbone import resolve
from .evaluation import evaluate, format_table
from .training import TrainConfig, train_module

# recipes/quickstart.yaml is the same run as a recipe; tests/test_experiments.py keeps the two
# in agreement.
MODEL, INTERMEDIATE, TARGET = "builtin:tiny-xlmr", "mnli", "xnli"
SETTINGS = dict(max_steps=300, batch_size=32, max_length=64, lr=3e-3)
# A real 12-layer encoder costs ~50x more per step on a CPU: fewer, smaller steps and one dev
# evaluation (chosen so the whole run takes minutes on 2 cores), at an adapter learning rate
# that suits pretrained weights.
MODEL_SETTINGS = {"builtin:e5-small": dict(max_steps=60, batch_size=16, max_length=48, lr=1e-3,
                                           evals=1)}
NOTES = {
    MODEL: "builtin:tiny-xlmr is a tiny RANDOMLY initialized model and the data are synthetic: "
           "the numbers show that the pipeline works, not how well transfer works.",
    "builtin:e5-small": "builtin:e5-small is multilingual-e5-small (real pretrained weights); "
                        "only English was trained on, so the other languages are zero-shot "
                        "(chance is 33.3). The data are the small synthetic samples.",
}


def run(output: str = "runs/quickstart", method: str = "seq_bn", steps: int | None = None,
        model: str = MODEL, echo=print) -> dict:
    settings = dict(MODEL_SETTINGS.get(model, SETTINGS))
    if steps is not None:
        settings["max_steps"] = steps
    # First, so that a missing extra is one error line and builtin:e5-small's one-time
    # conversion happens before phase 1 starts.
    resolve(model)
    out = Path(output)
    # The quickstart's own folder: running it again replaces its modules.
    common = dict(settings, model=model, data="samples", method=method, overwrite=True)
    echo(f"[1/3] phase 2: intermediate module, mnli -> {out / 'mnli'}")
    inter = train_module(TrainConfig(task="mnli", output=str(out / "mnli"), **common))
    echo(f"      dev accuracy {inter['dev']:.3f}")
    echo(f"[2/3] phase 3: xnli module stacked on mnli -> {out / 'xnli'}")
    target = train_module(TrainConfig(task="xnli", output=str(out / "xnli"),
                                      stack=[inter["module"]], **common))
    echo(f"      dev accuracy (en) {target['dev']:.3f}")
    echo("[3/3] zero-shot evaluation on every sample language")
    result = evaluate("xnli", target["module"], data="samples",
                      max_length=settings["max_length"])
    echo(format_table(result))
    echo(f"predictions in XTREME layout: {result['predictions']}/")
    echo(NOTES.get(model, f"{model}: only English was trained on; the rest is zero-shot."))
    return {"intermediate": inter, "target": target, "evaluation": result}
