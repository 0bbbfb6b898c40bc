"""Own tasks: catalogue files (--catalog / ADAPTERXL_CATALOG) validated like the built-in one,
with errors naming the file and the key; --dataset ID[:CONFIG] with a column mapping."""
import json

import yaml

from adapterxl.tasks import CATALOG_ENV, catalog, get_task
from conftest import cli, fails

ENTRY = {"description": "my NLI task", "format": "pair_classification", "role": "intermediate",
         "languages": ["en"], "labels": ["entailment", "contradiction"], "metric": "accuracy",
         "local_only": "my own files (--data-dir)", "hyperparameters": {"epochs": 1}}


def _write(path, entries):
    path.write_text(yaml.safe_dump(entries))
    return path


def test_catalog_file_adds_and_overrides_tasks(tmp_path, monkeypatch):
    own = _write(tmp_path / "mine.yaml", {
        "mynli": ENTRY,
        "qqp": {**ENTRY, "description": "qqp from my files", "labels": ["no", "yes"]}})
    monkeypatch.setenv(CATALOG_ENV, str(own))
    assert get_task("mynli").format == "pair_classification"
    assert get_task("qqp").description == "qqp from my files"
    assert "xnli" in catalog()
    run = cli("tasks", "--json")
    assert run.exit_code == 0 and "mynli" in {t["name"] for t in json.loads(run.stdout)}


def test_catalog_file_errors_name_file_and_key(tmp_path, monkeypatch):
    monkeypatch.setenv(CATALOG_ENV, "")  # so that what --catalog adds is undone after
    bad = _write(tmp_path / "bad.yaml", {"mynli": {**ENTRY, "metric": "bleu"}})
    fails("--catalog", bad, "tasks", match=f"{bad}: task 'mynli': unknown metric 'bleu'")
    typo = _write(tmp_path / "typo.yaml", {"mynli": {**ENTRY, "lables": ["a"]}})
    fails("--catalog", typo, "tasks", match=f"{typo}: task 'mynli': unknown key 'lables'")
    fails("--catalog", tmp_path / "none.yaml", "tasks", match="none.yaml")


def test_own_task_trains_from_local_files(tmp_path, monkeypatch):
    """The worked example of the README: a new NLI-style task from a local file."""
    monkeypatch.setenv(CATALOG_ENV, "")
    data = tmp_path / "mynli-data"
    data.mkdir()
    lines = [{"text": ["the cat sleeps", ("nobody" if i % 2 else "someone") + " sleeps"],
              "label": "contradiction" if i % 2 else "entailment"} for i in range(40)]
    for split in ("train", "validation"):
        (data / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in lines))
    own = _write(tmp_path / "mine.yaml", {"mynli": ENTRY})
    run = cli("--catalog", own, "train-intermediate", "--task", "mynli", "--data-dir", data,
              "--model", "builtin:tiny-xlmr", "--method", "lora", "--max-steps", "3",
              "--batch-size", "8", "--max-length", "32", "-o", tmp_path / "m")
    assert run.exit_code == 0, run.output
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["task"] == "mynli" and manifest["data"]["source"] == "local"


def test_dataset_with_columns_replaces_the_sources(tmp_path):
    from adapterxl.training import TrainConfig, _tasks

    cfg = TrainConfig(task="mnli", output="x", dataset="acme/my-nli:default",
                      columns={"text": ["premise", "hypothesis"], "label": "gold"},
                      dev_split="dev")
    [task] = _tasks(cfg)
    assert task.sources == {
        "train": {"path": "acme/my-nli", "name": "default", "split": "train"},
        "validation": {"path": "acme/my-nli", "name": "default", "split": "dev"}}
    assert task.fields["label"] == "gold" and task.labels == get_task("mnli").labels
    # offline in tests: the Hub dataset cannot be read, said in one line
    fails("train-intermediate", "--task", "mnli", "--dataset", "acme/my-nli",
          "--columns", "text=premise,hypothesis", "--columns", "label=gold",
          "--model", "builtin:tiny-xlmr", "-o", tmp_path / "m", match="acme/my-nli")
    fails("train-intermediate", "--task", "mnli", "--dataset", "acme/my-nli",
          "--columns", "txt=premise", "--model", "builtin:tiny-xlmr", "-o", tmp_path / "m",
          match="unknown --columns key for the pair_classification format 'txt'")
    fails("train-intermediate", "--task", "mnli", "--columns", "text=a",
          "--model", "builtin:tiny-xlmr", "-o", tmp_path / "m", match="--dataset")
