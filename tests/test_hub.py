"""Sharing: push/pull through a local registry and (mocked at the huggingface_hub boundary)
the Hub, the model card, integrity and path safety, PEFT / adapters export and import."""
import fnmatch
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adapterxl.backbone import builtin_path, load_backbone
from adapterxl.errors import AdapterxlError
from adapterxl.modules import (assemble, check_compatible, load_for_inference, open_module)
from adapterxl.modules.store import sha256
from conftest import batch, cli, fails, quick

TINY = "builtin:tiny-xlmr"
SECRET = "hf_SECRETtoken0123456789"


run = cli


def ok(*args):
    r = run(*args)
    assert r.exit_code == 0, (r.output, r.exception)
    return r.stdout


def logits(module_dir, inputs=None):
    backbone = load_backbone(TINY)
    model = load_for_inference(backbone, open_module(module_dir))
    with torch.no_grad():
        return model(**(inputs or batch(backbone)))["logits"]


def encoder_output(model, inputs):
    with torch.no_grad():
        return model.encode(**inputs)[0].last_hidden_state


def files_state(path):
    return {p.relative_to(path).as_posix(): sha256(p) for p in sorted(Path(path).rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return tmp_path_factory.mktemp("registry")


@pytest.fixture(scope="module")
def source(mnli_module, tmp_path_factory):
    """The seq_bn module with evaluation results in three languages."""
    path = tmp_path_factory.mktemp("src") / "mnli"
    shutil.copytree(mnli_module, path)
    results = {"task": "xnli", "split": "test", "metric": "accuracy",
               "per_language": {"en": {"accuracy": 0.81}, "de": {"accuracy": 0.42},
                                "sw": {"accuracy": 0.35}}}
    (path / "eval").mkdir(exist_ok=True)
    (path / "eval" / "results.json").write_text(json.dumps(results))
    return path


@pytest.fixture(scope="module")
def pushed(source, registry):
    out = ok("push", source, "--repo", "acme/mnli", "--registry", registry)
    assert str(registry / "acme" / "mnli" / "main") in out
    return registry / "acme" / "mnli" / "main"


@pytest.fixture(scope="module")
def stacked(pushed, registry, tmp_path_factory):
    """A target trained with `--stack acme/mnli` from the registry, pushed as acme/xnli."""
    os.environ["ADAPTERXL_REGISTRY"] = str(registry)
    try:
        out = tmp_path_factory.mktemp("t") / "xnli"
        ok("train-target", "--task", "xnli", "--stack", "acme/mnli", "--model", TINY, "--data",
           "samples", "--max-steps", "3", "--batch-size", "8", "--max-length", "48", "-o", out)
    finally:
        del os.environ["ADAPTERXL_REGISTRY"]
    ok("push", out, "--repo", "acme/xnli", "--registry", registry)
    return out


# ---- registry round trip, card, stacking ---------------------------------------------------
def test_push_pull_roundtrip(source, pushed, registry):
    local = Path(ok("pull", "acme/mnli", "--registry", registry).strip())
    from adapterxl.backbone import home
    assert local == home() / "hub" / "acme" / "mnli" / "main"
    assert torch.equal(logits(local), logits(source))
    assert not list(local.parent.glob(".*tmp*"))  # staging removed
    # the pulled copy keeps the fingerprint check
    with pytest.raises(AdapterxlError, match="was trained on"):
        check_compatible(load_backbone("builtin:tiny-bert"), open_module(local))


def test_card_metadata(pushed):
    from huggingface_hub import ModelCard

    card = ModelCard.load(pushed / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "adapterxl"
    assert "base_model" not in data  # builtin backbones are not on the Hub
    assert {"adapterxl", "seq_bn", "mnli", "bottleneck"} <= set(data["tags"])  # the engine
    assert data["language"] == ["en", "de", "sw"]
    assert "datasets" not in data  # bundled samples
    results = card.data.eval_results
    assert {r.dataset_config for r in results} == {"en", "de", "sw"}
    assert {r.metric_type for r in results} == {"accuracy"}
    assert next(r for r in results if r.dataset_config == "de").metric_value == 0.42
    assert "model-index" in card.content
    assert "adapterxl train-target --task xnli" in card.text and "--stack acme/mnli" in card.text
    assert "adapterxl evaluate --task mnli --module acme/mnli" in card.text
    assert "| xnli | de | test | 0.4200 |" in card.text


def test_card_base_model(source, tmp_path):
    from huggingface_hub import ModelCard

    from adapterxl.hub import model_card

    copy = tmp_path / "m"
    shutil.copytree(source, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["backbone"]["id"] = "FacebookAI/xlm-roberta-large"
    manifest["data"] = {"source": "hf", "train": [{"path": "nyu-mll/glue", "name": "mnli",
                                                   "split": "train"}]}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    card = ModelCard(str(model_card(copy, "acme/m")))
    assert card.data.base_model == "FacebookAI/xlm-roberta-large"
    assert card.data.datasets == ["nyu-mll/glue"]


def test_stack_from_registry(stacked, registry, monkeypatch):
    chain = open_module(stacked).chain()
    assert [m.name for m in chain] == ["mnli", "xnli"]
    # the pulled target (with its stack copy) gives the same logits as the local one; a Hub
    # id is resolved at the edges (open_module takes a folder)
    from adapterxl.hub import resolve_module

    monkeypatch.setenv("ADAPTERXL_REGISTRY", str(registry))
    assert torch.equal(logits(resolve_module("acme/xnli")), logits(stacked))
    rows = json.loads(ok("hub", "list", "--task", "xnli", "--json"))
    assert [r["id"] for r in rows] == ["acme/xnli"]
    rows = json.loads(ok("hub", "list", "--backbone", TINY, "--json"))
    assert {"acme/mnli", "acme/xnli"} <= {r["id"] for r in rows}
    assert json.loads(ok("hub", "list", "--backbone", "xlm-roberta-large", "--json")) == []


def test_revision(source, registry):
    ok("push", source, "--repo", "acme/mnli", "--revision", "v1", "--registry", registry)
    assert (registry / "acme" / "mnli" / "v1" / "manifest.json").is_file()
    local = Path(ok("pull", "acme/mnli@v1", "--registry", registry).strip())
    assert local.name == "v1" and open_module(local).name == "mnli"


# ---- integrity and path safety --------------------------------------------------------------
def _bad_copy(registry, src_name, name):
    dest = registry / "acme" / name / "main"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(registry / "acme" / src_name / "main", dest)
    return dest


def test_tampered_and_truncated(stacked, registry):
    from adapterxl.hub import cache_dir

    bad = _bad_copy(registry, "mnli", "tampered")
    data = bytearray((bad / "module.safetensors").read_bytes())
    data[-3] ^= 0xFF
    (bad / "module.safetensors").write_bytes(bytes(data))
    line = fails("pull", "acme/tampered", "--registry", registry, match="module.safetensors")
    assert "sha256" in line and "retry" in line
    assert not cache_dir("acme/tampered").exists()

    bad = _bad_copy(registry, "xnli", "truncated")
    lower = next((bad / "stack").iterdir())
    weights = lower / "module.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    line = fails("pull", "acme/truncated", "--registry", registry, match="stack/00-mnli")
    assert "module.safetensors" in line and "tampered or truncated" in line


def test_path_traversal_refused(pushed, registry, tmp_path):
    bad = _bad_copy(registry, "mnli", "escape")
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["files"]["../../../evil.safetensors"] = "0" * 64
    (bad / "manifest.json").write_text(json.dumps(manifest))
    fails("pull", "acme/escape", "--registry", registry, match="would leave the module folder")

    bad = _bad_copy(registry, "mnli", "link")
    (tmp_path / "outside.safetensors").write_bytes((bad / "head.safetensors").read_bytes())
    (bad / "head.safetensors").unlink()
    (bad / "head.safetensors").symlink_to(tmp_path / "outside.safetensors")
    fails("pull", "acme/link", "--registry", registry, match="symbolic link")

    for spec in ("acme/../etc", "../x/y", "acme/name@../../x", "/abs/path"):
        fails("pull", spec, "--registry", registry, match="not a Hub module id")


# ---- the Hugging Face Hub, mocked at the huggingface_hub boundary --------------------------
class FakeApi:
    calls = []
    fail = None

    def __init__(self, token=None, **kw):
        FakeApi.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id, **kw):
        FakeApi.calls.append(("create_repo", dict(kw, repo_id=repo_id)))
        return f"https://hub.example/{repo_id}"

    def create_branch(self, repo_id, **kw):
        FakeApi.calls.append(("create_branch", dict(kw, repo_id=repo_id)))

    def upload_folder(self, **kw):
        files = sorted(p.relative_to(kw["folder_path"]).as_posix()
                       for p in Path(kw["folder_path"]).rglob("*") if p.is_file())
        FakeApi.calls.append(("upload_folder", dict(kw, files=files)))
        if FakeApi.fail:
            raise FakeApi.fail

    def list_models(self, **kw):
        from types import SimpleNamespace

        FakeApi.calls.append(("list_models", kw))
        return [SimpleNamespace(id="acme/mnli", card_data={
            "base_model": None, "language": ["en"],
            "adapterxl": {"task": "mnli", "method": "seq_bn", "backbone": TINY}})]


@pytest.fixture
def fake_hub(monkeypatch):
    import huggingface_hub

    FakeApi.calls, FakeApi.fail = [], None
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: SECRET)
    monkeypatch.delenv("ADAPTERXL_REGISTRY", raising=False)
    return FakeApi


def test_hub_push_arguments(source, fake_hub):
    out = ok("push", source, "--repo", "acme/mnli", "--private", "--revision", "dev")
    calls = dict((name, kw) for name, kw in fake_hub.calls)
    assert calls["init"]["token"] == SECRET
    assert calls["create_repo"]["repo_id"] == "acme/mnli" and calls["create_repo"]["private"]
    assert calls["create_branch"]["branch"] == "dev"
    up = calls["upload_folder"]
    assert up["repo_id"] == "acme/mnli" and up["revision"] == "dev"
    assert {"README.md", "manifest.json", "module.safetensors", "head.safetensors",
            "eval/results.json"} <= set(up["files"])
    assert "train-results.json" not in up["files"]
    assert SECRET not in out and "https://hub.example/acme/mnli/tree/dev" in out


def http_error(message: str):
    """The error huggingface_hub raises for an HTTP failure; since hub 1 it needs the response
    (only its headers and request are read)."""
    from types import SimpleNamespace

    from huggingface_hub.errors import HfHubHTTPError

    return HfHubHTTPError(message, response=SimpleNamespace(headers={}, request=None))


def test_hub_push_failure_keeps_module(source, fake_hub):
    before = files_state(source)
    fake_hub.fail = http_error("403 Forbidden: storage quota exceeded")
    line = fails("push", source, "--repo", "acme/mnli", match="push to acme/mnli failed")
    assert "quota" in line and "unchanged" in line and f"adapterxl push {source}" in line
    assert SECRET not in line
    assert files_state(source) == before
    fake_hub.fail = ConnectionError("Max retries exceeded")
    fails("push", source, "--repo", "acme/mnli", match="retry with")


def test_hub_push_not_logged_in(source, fake_hub, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    fails("push", source, "--repo", "acme/mnli", match="HF_TOKEN")


def test_hub_pull_arguments(pushed, monkeypatch, fake_hub):
    import huggingface_hub

    from adapterxl.hub import PULL_PATTERNS, cache_dir

    seen = {}

    def snapshot_download(repo_id, **kw):
        seen.update(kw, repo_id=repo_id)
        for p in pushed.rglob("*"):
            rel = p.relative_to(pushed).as_posix()
            if p.is_file() and any(fnmatch.fnmatch(rel, pat) for pat in kw["allow_patterns"]):
                (Path(kw["local_dir"]) / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, Path(kw["local_dir"]) / rel)
        meta = Path(kw["local_dir"]) / ".cache" / "huggingface"
        meta.mkdir(parents=True)
        (meta / "x.metadata").write_text("etag")
        return kw["local_dir"]

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    out = ok("pull", "acme/hubmod@rc1")
    assert seen["repo_id"] == "acme/hubmod" and seen["revision"] == "rc1"
    assert seen["allow_patterns"] == PULL_PATTERNS and seen["token"] == SECRET
    assert SECRET not in out
    local = cache_dir("acme/hubmod", "rc1")
    assert not (local / ".cache").exists() and open_module(local).name == "mnli"

    def broken(repo_id, **kw):
        raise http_error("401 Unauthorized")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", broken)
    fails("pull", "acme/other", match="cannot pull acme/other")
    assert not cache_dir("acme/other").exists()


def test_hub_list(fake_hub):
    rows = json.loads(ok("hub", "list", "--task", "mnli", "--backbone", TINY, "--json"))
    assert rows[0]["id"] == "acme/mnli" and rows[0]["task"] == "mnli"
    kw = dict(fake_hub.calls)["list_models"]
    assert kw["library"] == "adapterxl" and kw["filter"] == ["mnli"]


# ---- export / import ------------------------------------------------------------------------
def test_peft_export_loads_in_peft(mnli_lora, tmp_path):
    from peft import PeftModel
    from transformers import AutoModel

    out = tmp_path / "peft"
    ok("export", mnli_lora, "--format", "peft", "-o", out)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == TINY
    assert config["r"] == 8 and config["lora_alpha"] == 16
    assert "encoder.layer.0.attention.self.query" in config["target_modules"]
    assert (out / "head.safetensors").is_file() and (out / "head_config.json").is_file()

    backbone = load_backbone(TINY)
    inputs = batch(backbone)
    ours = encoder_output(load_for_inference(backbone, open_module(mnli_lora)), inputs)
    peft_model = PeftModel.from_pretrained(
        AutoModel.from_pretrained(builtin_path("tiny-xlmr"), add_pooling_layer=False), out)
    peft_model.eval()
    with torch.no_grad():
        theirs = peft_model(input_ids=inputs["input_ids"],
                            attention_mask=inputs["attention_mask"]).last_hidden_state
    torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-6)

    # and back: the imported module (head restored) gives the same logits
    back = tmp_path / "back"
    ok("import", out, "-o", back)
    mod = open_module(back)
    assert mod.method == "lora" and mod.method_config["matrices"] == ["q", "v"]
    assert mod.manifest["task"] == "mnli" and mod.manifest["backbone"]["fingerprint"] == \
        backbone.fingerprint
    torch.testing.assert_close(logits(back), logits(mnli_lora), rtol=0, atol=1e-6)
    fails("export", mnli_lora, "--format", "adapters", "-o", tmp_path / "x",
          match="--format peft")


def test_adapters_export_roundtrip(mnli_module, tmp_path):
    """AdapterHub's layout written and read without the `adapters` package; where that
    package is installed (the old stack), it loads the export with the same outputs."""
    out = tmp_path / "ad"
    ok("export", mnli_module, "--format", "adapters", "-o", out)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["model_type"] == "xlm-roberta" and config["hidden_size"] == 64
    assert config["name"] == "mnli" and config["config"]["reduction_factor"] == 16
    assert config["config"]["original_ln_before"] is True  # AdapterHub's full seq_bn config
    assert sorted(load_file(out / "adapter.safetensors"))[0].startswith("encoder.layer.0.output"
                                                                          ".adapters.mnli.")

    try:
        import adapters
    except ImportError:
        adapters = None
    if adapters is not None:
        from transformers import AutoModel

        backbone = load_backbone(TINY)
        inputs = batch(backbone)
        ours = encoder_output(load_for_inference(backbone, open_module(mnli_module)), inputs)
        model = AutoModel.from_pretrained(builtin_path("tiny-xlmr"), add_pooling_layer=False)
        adapters.init(model)
        name = model.load_adapter(str(out), use_safetensors=True)
        model.set_active_adapters(name)
        model.eval()
        with torch.no_grad():
            theirs = model(input_ids=inputs["input_ids"],
                           attention_mask=inputs["attention_mask"]).last_hidden_state
        torch.testing.assert_close(theirs, ours, rtol=0, atol=1e-6)

    back = tmp_path / "back"
    ok("import", out, "-o", back, "--task", "mnli")
    assert open_module(back).method == "seq_bn"
    torch.testing.assert_close(logits(back), logits(mnli_module), rtol=0, atol=1e-6)

    # without the head files: a head-less module, fine for stacking
    os.remove(out / "head.safetensors")
    headless = tmp_path / "headless"
    ok("import", out, "-o", headless)
    mod = open_module(headless)
    assert mod.manifest["head"] is None and mod.manifest["task"] == "unknown"
    assert mod.head_weights() == {}


@pytest.fixture(scope="module")
def adapterhub_like(registry):
    """A faithful fake of AdapterHub/xlm-roberta-base-en-wiki_pfeiffer: an invertible
    (MAD-X) language adapter saved by the adapters library itself, in its default .bin format,
    from a model with a head (keys carry the `roberta.` prefix), in a registry."""
    pytest.importorskip("adapters", reason="the fake is saved by AdapterHub's library itself")
    from adapters import AutoAdapterModel, SeqBnInvConfig

    model = AutoAdapterModel.from_pretrained(builtin_path("tiny-xlmr"))
    model.add_adapter("en", config=SeqBnInvConfig(reduction_factor=2))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".en." in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    dest = registry / "AdapterHub" / "xlm-roberta-base-en-wiki_pfeiffer" / "main"
    dest.mkdir(parents=True)
    model.save_adapter(str(dest), "en")
    assert (dest / "pytorch_adapter.bin").is_file()
    model.set_active_adapters("en")
    model.eval()
    return model, dest


def test_adapterhub_language_adapter(adapterhub_like, registry, tmp_path):
    library_model, _ = adapterhub_like
    spec = "AdapterHub/xlm-roberta-base-en-wiki_pfeiffer"
    line = fails("import", spec, "-o", tmp_path / "en", "--model", TINY, "--registry", registry,
                 match="pickle")
    assert "--allow-pickle" in line
    fails("evaluate", "--task", "xnli", "--module", spec, "--data", "samples",
          match="adapterxl import")  # resolvable, but not an adapterxl module
    ok("import", spec, "-o", tmp_path / "en", "--model", TINY, "--registry", registry,
       "--allow-pickle", "--language", "en")
    mod = open_module(tmp_path / "en")
    assert mod.method == "seq_bn_inv" and mod.role == "language"
    assert mod.method_config["reduction_factor"] == 2 and mod.manifest["languages"] == ["en"]

    backbone = load_backbone(TINY)
    inputs = batch(backbone)
    model, _ = assemble(backbone, [mod])
    model.eval()
    with torch.no_grad():
        theirs = library_model.base_model(input_ids=inputs["input_ids"],
                                          attention_mask=inputs["attention_mask"])
    torch.testing.assert_close(encoder_output(model, inputs), theirs.last_hidden_state,
                               rtol=0, atol=1e-6)

    # stacks: a target module trained on top of the imported language module
    result = quick("xnli", tmp_path / "xnli", lang_module=str(tmp_path / "en"), max_steps=3,
                   batch_size=8, max_length=48)
    chain = open_module(result["module"]).chain()
    assert [m.role for m in chain] == ["language", "task"]
    assert logits(result["module"]).shape[-1] == 3
