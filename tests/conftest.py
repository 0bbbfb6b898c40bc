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
    from adapterxl.train import TrainConfig, train_module

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
