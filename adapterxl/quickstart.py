"""The offline quickstart: intermediate module (MNLI) -> target module stacked on it (XNLI)
-> zero-shot evaluation in every sample language, on builtin:tiny-xlmr and bundled samples."""
from __future__ import annotations

from pathlib import Path

from .evaluation import evaluate, format_table
from .train import TrainConfig, train_module

# recipes/quickstart.yaml is the same run as a recipe; tests/test_experiments.py keeps the two
# in agreement.
MODEL, INTERMEDIATE, TARGET = "builtin:tiny-xlmr", "mnli", "xnli"
SETTINGS = dict(max_steps=300, batch_size=32, max_length=64, lr=3e-3)
NOTE = ("builtin:tiny-xlmr is a tiny RANDOMLY initialized model and the data are synthetic: "
        "the numbers show that the pipeline works, not how well transfer works.")


def run(output: str = "runs/quickstart", method: str = "seq_bn",
        steps: int = SETTINGS["max_steps"], echo=print) -> dict:
    out = Path(output)
    # The quickstart's own folder: running it again replaces its modules.
    common = dict(SETTINGS, model=MODEL, data="samples", method=method, max_steps=steps,
                  overwrite=True)
    echo(f"[1/3] phase 2: intermediate module, mnli -> {out / 'mnli'}")
    inter = train_module(TrainConfig(task="mnli", output=str(out / "mnli"), **common))
    echo(f"      dev accuracy {inter['dev']:.3f}")
    echo(f"[2/3] phase 3: xnli module stacked on mnli -> {out / 'xnli'}")
    target = train_module(TrainConfig(task="xnli", output=str(out / "xnli"),
                                      stack=[inter["module"]], **common))
    echo(f"      dev accuracy (en) {target['dev']:.3f}")
    echo("[3/3] zero-shot evaluation on every sample language")
    result = evaluate("xnli", target["module"], data="samples", max_length=64)
    echo(format_table(result))
    echo(f"predictions in XTREME layout: {result['predictions']}/")
    echo(NOTE)
    return {"intermediate": inter, "target": target, "evaluation": result}
