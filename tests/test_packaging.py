"""Packaging: the wheel carries the recipes (run by name outside a clone), py.typed and the
extras; the model card has a licence, Hub-true dataset configs and usage snippets; push
--also uploads PEFT / adapters exports beside the module."""
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import cli, fails

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                            "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
                           capture_output=True, text=True, timeout=600,
                           cwd=tmp_path_factory.mktemp("build"))
    if build.returncode != 0 and "No module named" in build.stderr:
        pytest.skip(f"cannot build a wheel here: {build.stderr.strip().splitlines()[-1]}")
    assert build.returncode == 0, build.stderr
    return next(out.glob("adapterxl-*.whl"))


def test_wheel_runs_a_shipped_recipe_by_name_outside_the_clone(wheel, tmp_path):
    names = zipfile.ZipFile(wheel).namelist()
    assert "adapterxl/recipes/stilts-xtreme.yaml" in names and "adapterxl/py.typed" in names
    assert "adapterxl/tasks/catalog.yaml" in names
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    for extra in ("typology", "faiss", "tracking", "slurm", "e5", "test"):
        assert f"Provides-Extra: {extra}" in meta
    assert "Classifier: Typing :: Typed" in meta and "Project-URL: " in meta
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", "from adapterxl.cli import main; main()", "run",
                          "stilts-xtreme", "--dry-run"], capture_output=True, text=True,
                         cwd=elsewhere, env=env, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "stilts-xtreme" in run.stdout and "cells" in run.stdout
    assert str(site) in subprocess.run(
        [sys.executable, "-c", "import adapterxl; print(adapterxl.__file__)"],
        capture_output=True, text=True, cwd=elsewhere, env=env).stdout  # not the clone's


def test_unknown_recipe_name():
    fails("run", "stilts-xtrem", "--dry-run", match="did you mean 'stilts-xtreme'")


def test_card_license_hub_configs_and_snippets(tmp_path, mnli_lora):
    from huggingface_hub import ModelCard

    from adapterxl.hub import model_card
    import shutil

    mod = tmp_path / "m"
    shutil.copytree(mnli_lora, mod)
    (mod / "eval").mkdir()
    (mod / "eval" / "results.json").write_text(json.dumps({
        "task": "xnli", "split": "test", "metric": "accuracy",
        "per_language": {"en": {"accuracy": 0.8}, "de": {"accuracy": 0.5}}}))
    (mod / "eval" / "udpos").mkdir()
    (mod / "eval" / "udpos" / "results.json").write_text(json.dumps({
        "task": "udpos", "split": "test", "metric": "tagging_f1",
        "per_language": {"de": {"f1": 0.7}}}))
    card = ModelCard(str(model_card(mod, "acme/m", license="mit", also=("peft",))))
    assert card.data.license == "mit"
    assert ModelCard(str(model_card(mod, "acme/m"))).data.license == "unknown"
    configs = {(r.dataset_type, r.dataset_config, r.dataset_split) for r in card.data.eval_results}
    assert ("google/xtreme", "udpos.German", "test") in configs
    assert any(t == "facebook/xnli" or "xnli" in t for t, c, _ in configs if c == "de")
    assert "pypi.org" not in card.text
    assert 'subfolder="peft"' in card.text and "adapterxl.predict('acme/m'" in card.text


def test_push_also_uploads_peft_and_it_loads_without_adapterxl(mnli_lora, tmp_path):
    from peft import PeftModel
    from transformers import AutoModel

    from adapterxl.backbone import builtin_path, load_backbone
    from adapterxl.modules import load_for_inference, open_module
    from conftest import batch

    registry = tmp_path / "registry"
    run = cli("push", mnli_lora, "--repo", "acme/lora", "--registry", registry, "--also", "peft",
              "--license", "apache-2.0")
    assert run.exit_code == 0, run.output
    where = registry / "acme" / "lora" / "main"
    assert (where / "manifest.json").is_file() and (where / "peft" / "adapter_config.json").is_file()
    backbone = load_backbone("builtin:tiny-xlmr")
    inputs = batch(backbone)
    with torch.no_grad():
        ours = load_for_inference(backbone, open_module(mnli_lora)).encode(**inputs)[0]
        theirs = PeftModel.from_pretrained(
            AutoModel.from_pretrained(builtin_path("tiny-xlmr"), add_pooling_layer=False),
            where / "peft").eval()(input_ids=inputs["input_ids"],
                                   attention_mask=inputs["attention_mask"])
    torch.testing.assert_close(theirs.last_hidden_state, ours.last_hidden_state, rtol=0, atol=1e-6)
    fails("push", mnli_lora, "--repo", "acme/x", "--registry", registry, "--also", "onnx",
          match="unknown --also format 'onnx'")
    fails("push", mnli_lora, "--repo", "acme/x", "--registry", registry, "--also", "adapters",
          match="--also adapters:")
