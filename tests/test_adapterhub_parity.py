"""The native bottleneck engine computes what AdapterHub's `adapters` 1.3 computes: the
fixtures (tests/fixtures/adapterhub, made by make_fixtures.py with adapters 1.3 +
transformers 4.57) hold AdapterHub's own files and outputs; here they are loaded without the
`adapters` package and compared. Runs on either transformers stack."""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from adapterxl.modules import _adapterhub, _bottleneck

HERE = Path(__file__).parent / "fixtures" / "adapterhub"
RECORD = json.loads((HERE / "expected.json").read_text())
HIDDEN = load_file(HERE / "expected.safetensors")


def _build(model_type: str):
    import transformers

    config = json.loads((HERE / "cases" / model_type / "config.json").read_text())
    config = transformers.AutoConfig.for_model(model_type, **config)
    model = transformers.MT5EncoderModel(config) if model_type == "mt5" else \
        transformers.AutoModel.from_config(config)
    weights = load_file(HERE / "cases" / model_type / "backbone.safetensors")
    own = dict(model.named_parameters())
    assert set(weights) == set(own), set(weights) ^ set(own)
    with torch.no_grad():
        for name, p in own.items():
            p.copy_(weights[name].float())
    return model.float().eval()


def _load(model, state: dict) -> None:
    """Copy AdapterHub's tensors into the native engine's parameters of the same name."""
    own = dict(model.named_parameters())
    missing = [k for k in state if k not in own]
    assert not missing, missing
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(v)


@pytest.mark.parametrize("key", sorted(RECORD["expected"]))
def test_parity_with_adapterhub(key):
    model_type, case = key.split("/")
    spec = RECORD["expected"][key]
    model = _build(model_type)
    engine = _bottleneck.Engine(model, model_type)
    case_dir = HERE / "cases" / model_type / case
    names = spec["stack"] + (spec["fusion"] or [])
    before = set(dict(model.named_parameters()))
    for name in names:
        config = json.loads((case_dir / name / "adapter_config.json").read_text())
        method, ours = _adapterhub.from_adapterhub(config["config"])
        engine.add(name, method, ours)
        _load(model, load_file(case_dir / name / "adapter.safetensors"))
    if (case_dir / "shared_parameters.safetensors").exists():
        _load(model, load_file(case_dir / "shared_parameters.safetensors"))
    if spec["fusion"]:
        engine.add_fusion("fz", spec["fusion"])
        _load(model, load_file(case_dir / "fz" / "model_adapter_fusion.safetensors"))
    # Every parameter the engine created came from AdapterHub's files (1:1 names).
    files = {}
    for f in case_dir.rglob("*.safetensors"):
        files.update(load_file(f))
    assert set(dict(model.named_parameters())) - before == set(files)
    engine.activate(spec["stack"], ("fz", spec["fusion"]) if spec["fusion"] else None)
    ids = torch.tensor(RECORD["input_ids"])
    with torch.no_grad():
        hidden = model(input_ids=ids, attention_mask=(ids != 1).long()).last_hidden_state
    diff = (hidden - HIDDEN[key]).abs().max().item()
    assert diff <= 1e-5, f"{key}: max abs diff {diff}"


@pytest.mark.parametrize("case", ["seq_bn_inv", "double_seq_bn"])
def test_import_reads_adapterhub_files(tmp_path, case):
    """`adapterxl import` turns the files adapters 1.3 wrote into a module holding the same
    tensors, without the `adapters` package."""
    import shutil

    from adapterxl.backbone import builtin_path
    from adapterxl.modules import open_module
    from conftest import cli

    model = _build("xlm-roberta")
    model.save_pretrained(tmp_path / "backbone")
    for f in builtin_path("tiny-xlmr").iterdir():  # a tokenizer for the backbone folder
        if "token" in f.name:
            shutil.copy(f, tmp_path / "backbone" / f.name)
    source = HERE / "cases" / "xlm-roberta" / case / "a"
    result = cli("import", source, "-o", tmp_path / "mod", "--model", tmp_path / "backbone")
    assert result.exit_code == 0, result.output
    mod = open_module(tmp_path / "mod")
    assert mod.method == case
    theirs = {k.replace(".a.", ".{module}."): v for k, v in
              load_file(source / "adapter.safetensors").items()}
    ours = mod.weights()
    assert set(ours) == set(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
