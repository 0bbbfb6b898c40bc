"""The notebook API: own task from a list of rows, a target stacked on it, predictions for
German sentences, a model trained outside adapterxl saved as a module; import is quiet."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import adapterxl
from conftest import batch

ROOT = Path(__file__).resolve().parent.parent
TINY = "builtin:tiny-xlmr"


@pytest.fixture(autouse=True)
def _forget_registered_tasks():
    """Tasks registered here stay out of other test files' catalogue."""
    from adapterxl import tasks

    before = dict(tasks._registered)
    yield
    tasks._registered.clear()
    tasks._registered.update(before)
    tasks._generation[0] += 1


def _rows(n=160, seed=0):
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        neg = rng.random() < 0.5
        first = "the cat sleeps on the mat" if i % 2 else "a man reads a book"
        second = ("nobody " if neg else "someone ") + ("sleeps" if i % 2 else "reads")
        out.append({"text": (first, second), "label": "contradiction" if neg else "entailment"})
    return out


@pytest.mark.slow
def test_notebook_flow_own_task_stack_predict(tmp_path):
    """The issue's 'done when': train on an own small task from a list of rows, stack a target
    module on it, get predictions for ten German sentences (LoRA: runs on both stacks)."""
    own = adapterxl.train("mynli", tmp_path / "mynli", rows=_rows(), format="pair_classification",
                          labels=["entailment", "contradiction"], model=TINY, method="lora",
                          max_steps=60, batch_size=16, lr=1e-2, progress=False)
    assert own["dev"] > 0.9  # learnable from the negation word
    target = adapterxl.train("xnli", tmp_path / "xnli", stack=tmp_path / "mynli", model=TINY,
                             method="lora", data="samples", max_steps=10, batch_size=16,
                             max_length=64, lr=3e-3, progress=False)
    from adapterxl.modules import open_module

    mod = open_module(target["module"])
    assert [m.name for m in mod.chain()] == ["mynli", "xnli"]
    assert open_module(own["module"]).manifest["data"] == {"source": "rows", "train": 144,
                                                           "validation": 16}
    german = ["Der Mann schläft.", "Die Katze liest.", "Ein Hund läuft.", "Niemand kommt.",
              "Sie lacht.", "Er isst.", "Wir gehen.", "Das Kind spielt.", "Es regnet.",
              "Ich lese."]
    labels = adapterxl.predict(target["module"], [(s, "Niemand schläft.") for s in german],
                               language="de")
    assert len(labels) == 10 and set(labels) <= {"entailment", "neutral", "contradiction"}
    # the own module answers its own task
    assert adapterxl.predict(own["module"], [("the cat sleeps on the mat", "nobody sleeps"),
                                             ("a man reads a book", "someone reads")]) == [
        "contradiction", "entailment"]


def test_train_takes_a_datasets_dataset_with_own_columns(tmp_path):
    import datasets

    rows = _rows(80, seed=1)
    ds = datasets.Dataset.from_list([{"premise": r["text"][0], "hypothesis": r["text"][1],
                                      "gold": r["label"]} for r in rows])
    result = adapterxl.train("mynli2", tmp_path / "m", rows=ds, format="pair_classification",
                             labels=["entailment", "contradiction"],
                             columns={"text": ["premise", "hypothesis"], "label": "gold"},
                             model=TINY, method="lora", max_steps=4, batch_size=8,
                             progress=False)
    assert result["steps"] == 4
    with pytest.raises(adapterxl.AdapterxlError, match="rows\\[0\\]"):
        adapterxl.train("mynli3", tmp_path / "x", rows=[{"premise": "a"}],
                        format="pair_classification", labels=["a", "b"], model=TINY,
                        progress=False)
    with pytest.raises(adapterxl.AdapterxlError, match="unknown training setting 'max_step'"):
        adapterxl.train("xnli", tmp_path / "y", max_step=3)


def test_a_model_trained_outside_is_saved_as_a_module(tmp_path):
    from adapterxl.backbone import load_backbone
    from adapterxl.modules import load_for_inference, open_module

    model = adapterxl.assemble("mnli", TINY, method="lora")
    inputs = batch(model.backbone)
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    model.train()
    for _ in range(3):  # any training loop (transformers.Trainer calls model(**batch) too)
        loss = model(**inputs, labels=torch.tensor([0, 1, 2, 0, 1, 2]))["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        expected = model(**inputs)["logits"]
    path = adapterxl.save_module(model, tmp_path / "outside", hyperparameters={"lr": 1e-2})
    mod = open_module(path)
    assert mod.manifest["task"] == "mnli" and mod.method == "lora"
    assert mod.manifest["labels"] == ["entailment", "neutral", "contradiction"]
    with torch.no_grad():
        again = load_for_inference(load_backbone(TINY), mod)(**inputs)["logits"]
    torch.testing.assert_close(again, expected, rtol=0, atol=1e-6)
    with pytest.raises(adapterxl.AdapterxlError, match="adapterxl.assemble"):
        adapterxl.save_module(torch.nn.Linear(2, 2), tmp_path / "x")


@pytest.mark.slow
def test_import_is_quick_and_quiet():
    code = ("import sys, adapterxl; heavy = [m for m in ('torch', 'transformers') "
            "if m in sys.modules]; print(heavy, adapterxl.__version__); adapterxl.train; "
            "import adapterxl.training, bitsandbytes; assert callable(adapterxl.train)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("[] ") and run.stderr == ""


def test_typed_config():
    import typing

    hints = typing.get_type_hints(adapterxl.TrainConfig)
    assert "lora" in typing.get_args(hints["method"])
    assert "4bit" in typing.get_args(hints["quantize"])
    assert "method" in adapterxl.TrainConfig.__doc__
