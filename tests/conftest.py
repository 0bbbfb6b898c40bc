import os

import pytest

# No network in tests: Hub calls must fail at once instead of retrying for ~25 s.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session", autouse=True)
def adapterxl_home(tmp_path_factory):
    """Builtin backbones are materialized once per test session, in a private cache."""
    home = tmp_path_factory.mktemp("adapterxl-home")
    os.environ["ADAPTERXL_HOME"] = str(home)
    return home


@pytest.fixture
def tiny():
    """A fresh tiny backbone (modules get injected into it, so one per use)."""
    from adapterxl.backbone import load_backbone

    return load_backbone("builtin:tiny-xlmr")


def quick(task, output, **kw):
    """A short training run on the bundled samples."""
    from adapterxl.training import TrainConfig, train_module

    backbone = kw.pop("backbone", None)
    cfg = dict(task=task, output=str(output), model="builtin:tiny-xlmr", data="samples",
               max_steps=20, batch_size=16, max_length=64, lr=3e-3)
    cfg.update(kw)
    return train_module(TrainConfig(**cfg), progress=False, backbone=backbone)


@pytest.fixture(scope="session")
def mnli_module(tmp_path_factory):
    """An intermediate seq_bn module shared by tests that only read it."""
    return quick("mnli", tmp_path_factory.mktemp("m") / "mnli", max_steps=60)["module"]


@pytest.fixture(scope="session")
def mnli_lora(tmp_path_factory):
    return quick("mnli", tmp_path_factory.mktemp("m") / "mnli-lora", method="lora",
                 max_steps=60)["module"]


def batch(backbone, n=6, lang="de"):
    """A padded batch of XNLI samples (varied lengths, so padding is exercised)."""
    from adapterxl.data.preprocess import Collator
    from adapterxl.formats import get_format
    from adapterxl.data.sources import load_split
    from adapterxl.tasks import get_task

    rows = load_split(get_task("xnli"), "test", lang, data="samples")[:n]
    feats = [{k: v for k, v in f.items() if k != "labels"}
             for f in get_format("pair_classification").encode(rows, backbone.tokenizer, 64,
                                                                False, None)]
    return Collator(backbone.tokenizer.pad_token_id)(feats)


def cli(*args):
    """Run the `adapterxl` command in-process (arguments may be paths)."""
    from click.testing import CliRunner

    from adapterxl.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def fails(*args, match, also=()):
    """The command exits 2 with exactly one `error:` line naming `match` (and each of `also`)."""
    result = cli(*args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert match in lines[0], lines[0]
    for part in also:
        assert str(part) in lines[0], (part, lines[0])
    return lines[0]


def interrupt_at(monkeypatch, step):
    """From now on (within `monkeypatch`), a training run stops right after writing its
    checkpoint at optimizer step `step`, as if killed there."""
    from adapterxl import checkpoint
    from adapterxl.errors import AdapterxlError

    real = checkpoint.save

    def save_then_stop(where, state, info):
        real(where, state, info)
        if state["step"] == step:
            raise AdapterxlError("simulated interruption")
    monkeypatch.setattr(checkpoint, "save", save_then_stop)


def randomize(model, slot, seed):
    """Every weight of `slot` set to a non-trivial random value (LoRA's B starts at zero and
    heads start random), so that a lost or misplaced tensor changes the logits."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.encoder.named_parameters():
            if slot.name in n.split("."):
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def save_nli_module(model, slot, path, task="xnli", lower=()):
    """`slot` and the active head saved as a 3-way pair-classification module for `task`."""
    from adapterxl.modules import save_module

    manifest = {"name": task, "task": task, "format": "pair_classification",
                "labels": ["entailment", "neutral", "contradiction"],
                "backbone": model.backbone.describe(),
                "method": {"name": slot.method, "config": slot.config}, "head": model.head_config}
    head = {k: v.detach().clone() for k, v in model.head.state_dict().items()}
    return save_module(path, manifest, model.module_state(slot), head, list(lower))


def logits(model, inputs):
    """The model's logits in eval mode, without a graph."""
    import torch

    model.eval()
    with torch.no_grad():
        return model(**inputs)["logits"]


def resumed_after_interruption(monkeypatch, task, out, step, **kw):
    """A `quick` run interrupted right after its checkpoint at `step`, then resumed with
    --resume: the resumed run's result."""
    import pytest

    from adapterxl.errors import AdapterxlError

    with monkeypatch.context() as m:
        interrupt_at(m, step)
        with pytest.raises(AdapterxlError, match="simulated"):
            quick(task, out, **kw)
    resumed = quick(task, out, resume=True, **kw)
    assert resumed["resumed_from_step"] == step
    return resumed
