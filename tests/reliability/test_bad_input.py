"""Every bad input ends in one clear line on stderr (`error: ...`), exit code 2, no traceback,
and loses nothing. Complements tests/test_errors.py (which it does not repeat): typos with
suggestions, malformed data for evaluation as well as training, backbones of another size or
seed, damaged or swapped weight files, a full disk while saving, and custom model code."""
import errno
import json
import shutil

import pytest
import torch

from conftest import cli, fails

TINY = ["--model", "builtin:tiny-xlmr", "--max-steps", "2", "--max-length", "32",
        "--batch-size", "8"]
SAMPLES = TINY + ["--data", "samples"]


def tree(path):
    """Every file under `path` with its bytes, to show that nothing changed."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def tiny_config():
    from transformers import AutoConfig

    from adapterxl.backbone import builtin_path

    return AutoConfig.from_pretrained(builtin_path("tiny-xlmr"))


def save_backbone(path, config, seed):
    from transformers import AutoModel, AutoTokenizer

    from adapterxl.backbone import builtin_path

    torch.manual_seed(seed)
    AutoModel.from_config(config, add_pooling_layer=False).save_pretrained(path)
    AutoTokenizer.from_pretrained(builtin_path("tiny-xlmr")).save_pretrained(path)
    return path


# ---- module fixtures, made once -------------------------------------------------------------
@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("bad-input")


@pytest.fixture(scope="module")
def module(work):
    """A tiny mnli module on builtin:tiny-xlmr, trained through the CLI."""
    out = work / "mnli"
    r = cli("train-intermediate", "--task", "mnli", "-o", out, *SAMPLES)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def reseeded(work):
    """Same architecture as builtin:tiny-xlmr, other random weights."""
    return save_backbone(work / "tiny-seed1", tiny_config(), seed=1)


@pytest.fixture(scope="module")
def narrow(work):
    """A backbone of hidden size 32 (builtin:tiny-xlmr has 64) and a module trained on it."""
    config = tiny_config()
    config.hidden_size, config.intermediate_size = 32, 64
    path = save_backbone(work / "tiny-h32", config, seed=0)
    out = work / "mnli-h32"
    r = cli("train-intermediate", "--task", "mnli", "-o", out, "--data", "samples",
            *[a if a != "builtin:tiny-xlmr" else str(path) for a in TINY])
    assert r.exit_code == 0, r.output
    return path, out


@pytest.fixture
def copy(tmp_path, module):
    """A private copy of `module` to damage."""
    return shutil.copytree(module, tmp_path / "copy")


def evaluate(mod, *extra):
    return ("evaluate", "--task", "xnli", "--module", mod, "--data", "samples",
            "--languages", "de", "--max-examples", "8", *extra)


# ---- unknown names ------------------------------------------------------------------------
def test_unknown_task_in_evaluate_suggests(module):
    line = fails("evaluate", "--task", "xnlii", "--module", module, "--data", "samples",
                 match="unknown task 'xnlii'")
    assert "did you mean 'xnli'" in line


def test_unknown_method_suggests():
    line = fails("train-intermediate", "--task", "mnli", "--method", "lroa", *SAMPLES,
                 match="unknown method 'lroa'")
    assert "did you mean 'lora'" in line and "seq_bn" in line


def test_unknown_language_suggests(module):
    line = fails("evaluate", "--task", "xnli", "--module", module, "--data", "samples",
                 "--languages", "de,frr", match="unknown language for xnli 'frr'")
    assert "did you mean 'fr'" in line


def test_unknown_builtin_backbone_suggests():
    line = fails("train-intermediate", "--task", "mnli", "--model", "builtin:tiny-xlm",
                 "--data", "samples", match="unknown builtin backbone 'tiny-xlm'")
    assert "did you mean 'tiny-xlmr'" in line


def test_backbone_path_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    fails("train-intermediate", "--task", "mnli", "--model", tmp_path / "empty", "--data",
          "samples", match="is not a model checkpoint (no config.json)",
          also=[tmp_path / "empty"])


def test_unknown_task_in_suite_module_key(module, tmp_path):
    fails("evaluate", "--suite", "xtreme", "--module", f"xnlii={module}", "--data", "samples",
          "-o", tmp_path / "eval", match="unknown task of xtreme 'xnlii'", also=["xnli"])


# ---- malformed data -----------------------------------------------------------------------
PAIR = '{"premise": "a b", "hypothesis": "c d", "label": 0}\n'


def write(directory, name, text, encoding="utf-8"):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_bad_json_line_in_dev_file(tmp_path):
    write(tmp_path, "train.jsonl", PAIR * 4)
    bad = write(tmp_path, "validation.jsonl", PAIR + PAIR + '{"premise": "a",\n')
    fails("train-intermediate", "--task", "mnli", "--data-dir", tmp_path, *TINY,
          match=f"{bad}:3: not valid JSON")


def test_bad_json_line_in_evaluation_file(tmp_path, module):
    bad = write(tmp_path, "test.de.jsonl", PAIR + "[1, 2]\n")
    fails("evaluate", "--task", "xnli", "--module", module, "--data-dir", tmp_path,
          "--languages", "de", match=f"{bad}:2: expected a JSON object")


def test_not_utf8(tmp_path):
    bad = write(tmp_path, "train.tsv", "premise\thypothesis\tlabel\nä\tb\tentailment\n",
                encoding="latin-1")
    fails("train-intermediate", "--task", "mnli", "--data-dir", tmp_path, *TINY,
          match=f"{bad}: not UTF-8 text")


def test_missing_column_in_tsv(tmp_path):
    bad = write(tmp_path, "train.tsv", "premise\tlabel\na b\tentailment\n")
    fails("train-intermediate", "--task", "mnli", "--data-dir", tmp_path, *TINY,
          match="hypothesis", also=[bad])


def test_missing_column_in_evaluation_file(tmp_path, module):
    bad = write(tmp_path, "test.de.jsonl", PAIR + '{"premise": "a", "label": 1}\n')
    fails("evaluate", "--task", "xnli", "--module", module, "--data-dir", tmp_path,
          "--languages", "de", match="missing column 'hypothesis'", also=[bad])


def test_label_index_outside_label_set(tmp_path):
    bad = write(tmp_path, "train.jsonl", PAIR + '{"premise": "a", "hypothesis": "b", '
                                                '"label": 7}\n')
    fails("train-intermediate", "--task", "mnli", "--data-dir", tmp_path, *TINY,
          match=f"{bad}:2: label 7")


def test_label_outside_label_set_in_evaluation_file(tmp_path, module):
    bad = write(tmp_path, "test.de.tsv", "premise\thypothesis\tlabel\na\tb\tneutral\n"
                                         "c\td\tperhaps\n")
    fails("evaluate", "--task", "xnli", "--module", module, "--data-dir", tmp_path,
          "--languages", "de", match=f"{bad}:3: label 'perhaps' is not in the label set")


@pytest.mark.parametrize("split", ["train", "validation"])
def test_empty_split(tmp_path, split):
    write(tmp_path, "train.jsonl", PAIR * 4)
    write(tmp_path, "validation.jsonl", PAIR * 4)
    empty = write(tmp_path, f"{split}.jsonl", "")
    fails("train-intermediate", "--task", "mnli", "--data-dir", tmp_path, *TINY,
          match="empty", also=[empty])


def test_blank_lines_only_is_empty(tmp_path, module):
    blank = write(tmp_path, "test.de.jsonl", "\n\n  \n")
    fails("evaluate", "--task", "xnli", "--module", module, "--data-dir", tmp_path,
          "--languages", "de", match="empty", also=[blank])


def test_missing_data_directory(tmp_path):
    fails("train-intermediate", "--task", "mnli", "--data-dir", tmp_path / "nope", *TINY,
          match="does not exist", also=[tmp_path / "nope"])


# ---- modules from another backbone --------------------------------------------------------
def test_other_seed_is_refused_and_force_overrides(module, reseeded, tmp_path):
    line = fails(*evaluate(module, "--model", reseeded),
                 match="was trained on builtin:tiny-xlmr", also=[reseeded, "--force"])
    fingerprint = json.loads((module / "manifest.json").read_text())["backbone"]["fingerprint"]
    assert fingerprint in line
    r = cli(*evaluate(module, "--model", reseeded, "--force", "-o", tmp_path / "eval"))
    assert r.exit_code == 0, r.output


def test_other_seed_is_refused_when_stacking(module, reseeded, tmp_path):
    fails("train-target", "--task", "xnli", "--stack", module, "-o", tmp_path / "x",
          "--data", "samples",
          *[a if a != "builtin:tiny-xlmr" else str(reseeded) for a in TINY],
          match="was trained on builtin:tiny-xlmr", also=[module, reseeded, "--force"])
    assert not (tmp_path / "x").exists()


def test_other_hidden_size_is_refused_even_with_force(module, narrow):
    path, _ = narrow
    for extra in ([], ["--force"]):
        fails(*evaluate(module, "--model", path, *extra), match="has hidden size 64",
              also=[module, path, "32"])


def test_stack_of_different_hidden_sizes(module, narrow, tmp_path):
    _, small = narrow
    fails("train-target", "--task", "xnli", "--stack", f"{module},{small}", "-o",
          tmp_path / "x", *SAMPLES, match="has hidden size 32", also=[small, "64"])
    fails("train-target", "--task", "xnli", "--stack", f"{module},{small}", "-o",
          tmp_path / "x", "--force", *SAMPLES, match="has hidden size 32")


# ---- damaged modules ----------------------------------------------------------------------
@pytest.mark.parametrize("filename", ["module.safetensors", "head.safetensors"])
def test_flipped_bytes(copy, filename):
    path = copy / filename
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    fails(*evaluate(copy), match=f"{filename} is corrupted (sha256 differs from the manifest)",
          also=[copy])


def test_flipped_bytes_in_a_stacked_copy(module, tmp_path):
    out = tmp_path / "xnli"
    r = cli("train-target", "--task", "xnli", "--stack", module, "-o", out, *SAMPLES)
    assert r.exit_code == 0, r.output
    lower = next((out / "stack").iterdir())
    data = bytearray((lower / "module.safetensors").read_bytes())
    data[-1] ^= 0x01
    (lower / "module.safetensors").write_bytes(bytes(data))
    fails(*evaluate(out), match="module.safetensors is corrupted", also=[lower])


def without_checksums(mod):
    manifest = json.loads((mod / "manifest.json").read_text())
    manifest["files"] = {}
    (mod / "manifest.json").write_text(json.dumps(manifest))


def test_truncated_without_checksum(copy):
    """Truncation is caught by the checksum (test_errors); without one, by the reader."""
    without_checksums(copy)
    path = copy / "module.safetensors"
    path.write_bytes(path.read_bytes()[:40])
    fails(*evaluate(copy), match="module.safetensors is not a readable safetensors file",
          also=[copy])


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail loudly if anything unpickles a module file."""
    def refuse(*a, **k):
        raise AssertionError("a module file was unpickled")
    monkeypatch.setattr(torch, "load", refuse)


@pytest.mark.parametrize("name", ["module.bin", "module.pt", "pytorch_model.bin"])
def test_pickle_weights_instead_of_safetensors(copy, name, no_unpickling):
    from safetensors.torch import load_file

    torch.save(load_file(copy / "module.safetensors"), copy / name)
    (copy / "module.safetensors").unlink()
    fails(*evaluate(copy), match="module.safetensors is missing", also=[copy])


def test_pickle_renamed_to_safetensors(copy, no_unpickling):
    """A pickle under the safetensors name (checksum updated to match) is never unpickled."""
    from safetensors.torch import load_file

    from adapterxl.modules.store import sha256

    path = copy / "module.safetensors"
    torch.save(load_file(path), path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["module.safetensors"] = sha256(path)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    fails(*evaluate(copy), match="module.safetensors is not a readable safetensors file")


def test_missing_manifest(copy):
    (copy / "manifest.json").unlink()
    fails(*evaluate(copy), match="is not an adapterxl module (no manifest.json)", also=[copy])


def test_missing_head(copy):
    (copy / "head.safetensors").unlink()
    fails(*evaluate(copy), match="head.safetensors is missing", also=[copy])


@pytest.mark.parametrize("edit, match", [
    (lambda m: m.pop("backbone"), "missing field 'backbone'"),
    (lambda m: m.update(format_version=99), "unsupported module format version 99"),
    (lambda m: m.update(stack=[{"name": "ghost"}]), "manifest lists 1 lower modules"),
])
def test_manifest_that_does_not_fit(copy, edit, match):
    manifest = json.loads((copy / "manifest.json").read_text())
    edit(manifest)
    (copy / "manifest.json").write_text(json.dumps(manifest))
    fails(*evaluate(copy), match=match, also=[copy])


def test_weights_of_another_method(copy, tmp_path):
    """seq_bn weights under a manifest that says lora: the tensors are named, not loaded."""
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["method"] = {"name": "lora", "config": {"r": 8, "alpha": 16, "dropout": 0.0,
                                                     "target_modules": ["query", "value"]}}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    fails(*evaluate(copy), match="does not fit this backbone/method", also=[copy])


# ---- disk full while saving ---------------------------------------------------------------
def enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def fail_on_call(n, real):
    """`real`, except that its n-th call (1-based) fails as on a full disk."""
    calls = []

    def wrapped(*a, **k):
        calls.append(a)
        if len(calls) == n:
            enospc()
        return real(*a, **k)
    return wrapped


@pytest.mark.parametrize("where", ["weights", "head", "manifest", "publish"])
def test_disk_full_while_saving_keeps_previous_module(tmp_path, module, monkeypatch, where):
    import safetensors.torch

    from adapterxl import _io

    target = shutil.copytree(module, tmp_path / "m")
    before = tree(target)
    if where in ("weights", "head"):
        monkeypatch.setattr(safetensors.torch, "save_file",
                            fail_on_call(1 if where == "weights" else 2,
                                         safetensors.torch.save_file))
    elif where == "manifest":
        # The module's manifest is the first JSON written once the checkpoint is gone.
        real = _io.write_json
        monkeypatch.setattr(_io, "write_json", lambda path, data: (
            enospc() if path.name == "manifest.json" else real(path, data)))
    else:
        monkeypatch.setattr(_io, "replace_dir", enospc)
    fails("train-intermediate", "--task", "mnli", "-o", target, "--overwrite",
          "--checkpoint-every", "0", *SAMPLES, match="No space left on device", also=[target])
    assert tree(target) == before
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "m")
    assert all(not n.startswith((".m.tmp-", ".m.old-")) for n in leftovers), leftovers


def test_disk_full_in_store_save_is_one_error(tmp_path, module, monkeypatch):
    """In-process: the store's save raises an error the CLI prints as one line (and that is
    still an OSError for callers that catch those)."""
    import safetensors.torch

    from adapterxl.errors import AdapterxlError
    from adapterxl.modules import open_module, store

    target = shutil.copytree(module, tmp_path / "m")
    before = tree(target)
    mod = open_module(target)
    monkeypatch.setattr(safetensors.torch, "save_file",
                        fail_on_call(2, safetensors.torch.save_file))
    with pytest.raises(AdapterxlError) as e:
        store.save_module(target, dict(mod.manifest), mod.weights(), mod.head_weights(), [])
    assert isinstance(e.value, OSError) and e.value.errno == errno.ENOSPC
    assert "\n" not in str(e.value) and str(target) in str(e.value)
    assert tree(target) == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


# ---- custom model code ----------------------------------------------------------------------
# transformers runs remote code from a copy in its modules cache, so the marker is a path
# the test chooses (not one beside __file__).
EVIL = ("import os, pathlib\n"
        "pathlib.Path(os.environ['AXL_RAN']).write_text('code ran')\n")


def custom_code_backbone(path, auto_map: dict, files: dict, model_type=None):
    """builtin:tiny-xlmr's weights saved with a config whose auto_map points at `files`."""
    path = save_backbone(path, tiny_config(), seed=0)
    config = json.loads((path / "config.json").read_text())
    if model_type:
        config["model_type"] = model_type
    config["auto_map"] = auto_map
    (path / "config.json").write_text(json.dumps(config))
    for name, text in files.items():
        (path / name).write_text(text)
    return path


@pytest.mark.parametrize("model_type", ["xlm-roberta", "evil-roberta"])
def test_backbone_with_custom_code_is_refused(tmp_path, model_type, monkeypatch):
    monkeypatch.setenv("AXL_RAN", str(tmp_path / "RAN"))
    path = custom_code_backbone(tmp_path / "custom", {
        "AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel"},
        {"configuration_evil.py": EVIL, "modeling_evil.py": EVIL}, model_type=model_type)
    fails("train-intermediate", "--task", "mnli", "--model", path, "-o", tmp_path / "out",
          "--data", "samples", "--max-steps", "2", match="trust_remote_code", also=[path])
    assert not (tmp_path / "RAN").exists(), "custom code was executed"
    assert not (tmp_path / "out").exists()


def test_load_backbone_custom_code_library_call(tmp_path, monkeypatch):
    monkeypatch.setenv("AXL_RAN", str(tmp_path / "RAN"))
    from adapterxl.backbone import load_backbone
    from adapterxl.errors import AdapterxlError

    path = custom_code_backbone(tmp_path / "custom", {"AutoModel": "modeling_evil.EvilModel"},
                                {"modeling_evil.py": EVIL})
    with pytest.raises(AdapterxlError, match="trust_remote_code"):
        load_backbone(str(path), device="cpu")
    assert not (tmp_path / "RAN").exists()


def test_failed_swap_puts_the_previous_directory_back(tmp_path, monkeypatch):
    """If the old directory was moved aside but the new one cannot take its place, the old one
    goes back."""
    import os

    from adapterxl import _io

    target = tmp_path / "m"
    target.mkdir()
    (target / "f").write_text("old")
    staged = _io.staging_dir(target)
    (staged / "f").write_text("new")
    monkeypatch.setattr(_io.os, "replace", fail_on_call(2, os.replace))
    with pytest.raises(OSError):
        _io.replace_dir(staged, target)
    monkeypatch.undo()
    assert (target / "f").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m", staged.name])


# ---- composition ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lora_module(work):
    out = work / "qqp-lora"
    r = cli("train-intermediate", "--task", "qqp", "--method", "lora", "-o", out, *SAMPLES)
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("args,match", [
    (lambda m, lo, w: ["--fuse", m], "--fuse needs at least two modules"),
    (lambda m, lo, w: ["--fuse", f"{m},{lo}"], "cannot fuse bottleneck-type and LoRA-type"),
    (lambda m, lo, w: ["--fuse", f"{m},{m}", "--stack", m], "--stack and --fuse cannot"),
    (lambda m, lo, w: ["--lang-module", m], "is not a language module"),
    (lambda m, lo, w: ["--method", "prefix", "--model", "builtin:tiny-qwen2"],
     "method 'prefix' is not supported on qwen2"),
    (lambda m, lo, w: ["--method", "compacter"], "must be a multiple of phm_dim"),
    (lambda m, lo, w: ["--method", "lora", "--method-config", "matrices=q,z"],
     "unknown target matrix 'z'"),
    (lambda m, lo, w: ["--method", "ia3", "--method-config", "r=4"],
     "unknown config key 'r' for method 'ia3'"),
    (lambda m, lo, w: ["--sampling-temperature", "2"], "needs --sampling temperature"),
])
def test_bad_composition(work, module, lora_module, args, match):
    fails("train-target", "--task", "xnli", "-o", work / "never", *SAMPLES,
          *args(module, lora_module, work), match=match)
    assert not (work / "never").exists()


def test_bad_language_module_inputs(work, module):
    fails("train-language", "--language", "xx1", "-o", work / "never", *SAMPLES,
          match="--language must be an ISO 639 code")
    fails("train-language", "--language", "yo", "-o", work / "never", *SAMPLES,
          match="no bundled sample text for 'yo'")
    fails("train-language", "--language", "sw", "--dataset", "nobody/nothing", "-o",
          work / "never", *TINY, match="cannot load text dataset 'nobody/nothing'")
    fails("evaluate", "--task", "xnli", "--module", module, "--data", "samples",
          "--lang-modules", work, match="was not trained with a language module")
    assert not (work / "never").exists()


BENIGN_CONFIG = ("from transformers import XLMRobertaConfig\n\n\n"
                 "class CustomConfig(XLMRobertaConfig):\n    pass\n")
BENIGN_MODEL = ("import os\nimport pathlib\n\nfrom transformers import XLMRobertaModel\n\n"
                "from .configuration_custom import CustomConfig\n\n"
                "pathlib.Path(os.environ['AXL_RAN']).write_text('code ran')\n\n\n"
                "class CustomModel(XLMRobertaModel):\n    config_class = CustomConfig\n")


@pytest.mark.slow
def test_trust_remote_code_is_an_explicit_opt_in(tmp_path, monkeypatch):
    """With --trust-remote-code the checkpoint's own model class is used, and the module's
    manifest says so; without it the same checkpoint is refused (test above)."""
    monkeypatch.setenv("AXL_RAN", str(tmp_path / "RAN"))
    path = custom_code_backbone(tmp_path / "custom", {
        "AutoConfig": "configuration_custom.CustomConfig",
        "AutoModel": "modeling_custom.CustomModel"},
        {"configuration_custom.py": BENIGN_CONFIG, "modeling_custom.py": BENIGN_MODEL})
    fails("train-intermediate", "--task", "mnli", "--model", path, "-o", tmp_path / "no",
          "--data", "samples", "--max-steps", "2", match="--trust-remote-code")
    assert not (tmp_path / "RAN").exists()
    # The bottleneck engine finds its sites by module path, not by class name (AdapterHub's
    # library refused an unknown class), so a custom subclass of XLM-R takes seq_bn too.
    r = cli("train-intermediate", "--task", "mnli", "--model", path, "-o", tmp_path / "bn",
            "--data", "samples", "--max-steps", "2", "--batch-size", "8", "--max-length", "32",
            "--trust-remote-code")
    assert r.exit_code == 0, r.output
    r = cli("train-intermediate", "--task", "mnli", "--model", path, "-o", tmp_path / "out",
            "--data", "samples", "--max-steps", "2", "--batch-size", "8", "--max-length", "32",
            "--trust-remote-code", "--method", "lora")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "RAN").exists(), "the custom model code did not run"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["backbone"]["trust_remote_code"] is True


@pytest.mark.parametrize("failure", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed "
                 "writing file data/0: file write failed"),
])
def test_full_disk_while_checkpointing_is_one_line_and_keeps_the_last(tmp_path, monkeypatch,
                                                                      failure):
    from adapterxl import _io, checkpoint

    where = tmp_path / "run.checkpoint"
    checkpoint.save(where, {"step": 1}, {"step": 1})
    before = (where / checkpoint.FILE).read_bytes()

    def full(*args, **kwargs):
        raise failure
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(_io.WriteError, match="cannot write a checkpoint to .*the previous "
                                             "checkpoint is unchanged") as err:
        checkpoint.save(where, {"step": 2}, {"step": 2})
    assert "\n" not in str(err.value)
    assert (where / checkpoint.FILE).read_bytes() == before
    # No temporary file left behind.
    assert sorted(p.name for p in where.iterdir()) == sorted([checkpoint.FILE, checkpoint.INFO])
