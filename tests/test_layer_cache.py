"""--cache-frozen-layers (issue 19): the layers below the lowest module run once per training
sequence; later batches start from their kept outputs. Replaying gives what computing gives,
the frozen layers really are skipped, and a run that replays trains the module a run that
always computes trains."""
import pytest
import torch

from adapterxl import layer_cache
from adapterxl.backbone import load_backbone
from adapterxl.data.preprocess import Collator
from adapterxl.heads import head_config
from adapterxl.layer_cache import LayerCache, lowest_module_layer
from adapterxl.modules import assemble, open_module, with_module_layers
from adapterxl.modules.model import SLOT_PREFIX
from adapterxl.errors import AdapterxlError
from conftest import batch, fails, interrupt_at, quick, resumed_after_interruption


def _model(method="seq_bn", layers="top:1", model="builtin:tiny-xlmr"):
    backbone = load_backbone(model)
    n = backbone.model.config.num_hidden_layers
    config = with_module_layers(method, {}, layers, n)
    model, _ = assemble(backbone, [], method=method, config=config,
                        head=head_config("classification", backbone.hidden_size, 3))
    return backbone, model


def _features(backbone, n=6):
    rows = batch(backbone, n)
    return [{"input_ids": ids[m.bool()].tolist()} for ids, m in
            zip(rows["input_ids"], rows["attention_mask"])]


@pytest.mark.parametrize("method,layers,lowest", [
    ("seq_bn", "top:1", 1), ("lora", "1", 1), ("seq_bn", None, 0), ("seq_bn_inv", None, 0)])
def test_lowest_module_layer(method, layers, lowest):
    backbone, model = _model(method, layers)
    assert lowest_module_layer(model.encoder, backbone.model_type, SLOT_PREFIX) == lowest


@pytest.mark.parametrize("method", ["seq_bn", "lora"])
def test_replay_gives_what_computing_gives_and_skips_the_frozen_layers(tmp_path, method):
    backbone, model = _model(method)
    features = _features(backbone)
    cache = LayerCache(model, backbone.model_type, backbone.hidden_size, SLOT_PREFIX,
                       {"default": features}, tmp_path, dev={"default": features})
    collate = Collator(backbone.tokenizer.pad_token_id)
    lower_calls = []
    hook = cache.layers[0].register_forward_hook(lambda *a: lower_calls.append(1))

    def forward(rows):
        inputs = collate([{**features[i], "_row": i} for i in rows])
        assert inputs["_rows"].tolist() == rows
        return model(**inputs)["logits"]

    order = [5, 3, 1, 0, 2, 4]
    with cache.session():
        model.train()
        assert not cache.layers[0].training and cache.layers[1].training
        forward([0, 1, 2, 3, 4, 5])  # a training forward keeps the states
        assert len(lower_calls) == 1 and cache.stats()["computed_batches"] == 1
        forward(order)  # the same sequences, batched and padded otherwise: layer 0 not run
        assert len(lower_calls) == 1 and cache.stats()["replayed_batches"] == 1
        model.eval()  # eval mode: the dev store, computed once, then replayed
        with torch.no_grad():
            forward(order)
            assert len(lower_calls) == 2 and cache.stats()["dev_computed_batches"] == 1
            replayed = forward(order)
        assert len(lower_calls) == 2 and cache.stats()["dev_replayed_batches"] == 1
    hook.remove()
    assert model.encoder.encoder.layer is cache.layers and len(cache.layers) == 2
    with torch.no_grad():
        reference = model(**collate([features[i] for i in order]))["logits"]
    torch.testing.assert_close(replayed, reference, atol=1e-5, rtol=1e-5)
    assert "train" not in vars(cache.layers[0])  # train() is the class's again


def test_a_run_that_replays_trains_what_a_run_that_computes_trains(tmp_path, monkeypatch):
    kw = dict(module_layers="top:1", cache_frozen_layers=True, max_steps=30, batch_size=32,
              max_train_examples=320)  # 3 epochs
    cached = quick("mnli", tmp_path / "cached", **kw)
    stats = cached["layer_cache"]
    assert stats["from_layer"] == 1 and stats["replayed_batches"] > 0, stats
    assert cached["epochs_seen"] == 3 and stats["computed_batches"] == 10, stats
    assert stats["dev_replayed_batches"] > 0, stats  # dev evaluations after the first

    monkeypatch.setattr(layer_cache._Store, "put", lambda self, seqs, hidden: None)
    computed = quick("mnli", tmp_path / "computed", **kw)
    assert computed["layer_cache"]["replayed_batches"] == 0
    a, b = open_module(cached["module"]), open_module(computed["module"])
    for key, value in a.weights().items():
        torch.testing.assert_close(value, b.weights()[key], atol=1e-4, rtol=1e-4)
    assert computed["layer_cache"]["dev_replayed_batches"] == 0
    for a_step, b_step in zip(cached["history"], computed["history"], strict=True):
        assert a_step == pytest.approx(b_step, abs=1e-4)  # losses and dev metrics
    assert open_module(cached["module"]).manifest.hyperparameters["cache_frozen_layers"] is True


def test_large_caches_live_in_a_file_that_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(layer_cache, "IN_MEMORY", 0)
    files = []
    real = layer_cache._Store._allocate

    def allocate(self, dtype):
        real(self, dtype)
        files.append(self.file)
        assert self.file.is_file() and self.file.stat().st_size > 0
    monkeypatch.setattr(layer_cache._Store, "_allocate", allocate)
    kw = dict(module_layers="top:1", cache_frozen_layers=True, max_steps=20, batch_size=32,
              max_train_examples=320, checkpoint_every=5)
    result = quick("mnli", tmp_path / "m", **kw)
    assert result["layer_cache"]["replayed_batches"] > 0
    assert files and not any(f.exists() for f in files)
    with monkeypatch.context() as m:  # an interrupted run leaves no file behind either
        interrupt_at(m, 15)
        with pytest.raises(AdapterxlError, match="simulated"):
            quick("mnli", tmp_path / "cut", **kw)
    cut = [f for f in files if f.parent.name.startswith("cut")]
    assert len(cut) == 2 and not any(f.exists() for f in cut)  # training and dev stores
    assert cut[0].parent.is_dir()  # beside the checkpoint, which stays for --resume


def test_choices_are_kept_per_sequence(tmp_path):
    result = quick("copa", tmp_path / "m", module_layers="top:1", cache_frozen_layers=True,
                   max_steps=12, batch_size=8, max_train_examples=48)
    assert result["layer_cache"]["replayed_batches"] > 0


def test_without_frozen_layers_it_is_one_error_line(tmp_path):
    base = ["train-target", "--task", "xnli", "--model", "builtin:tiny-xlmr", "--data",
            "samples", "--max-steps", "1", "--cache-frozen-layers"]
    fails(*base, "-o", tmp_path / "a", match="give --module-layers")
    fails(*base, "--module-layers", "0-1", "-o", tmp_path / "b", match="give --module-layers")


def test_unsupported_architecture_is_refused(tmp_path):
    fails("train-target", "--task", "xnli", "--model", "builtin:tiny-mt5", "--data", "samples",
          "--max-steps", "1", "--module-layers", "top:1", "--cache-frozen-layers",
          "-o", tmp_path / "m", match="not supported on mt5")


def test_multitask_run_resumed_rebuilds_the_cache(tmp_path, monkeypatch):
    """Each task keeps its own sequences; an interrupted run resumes (the kept states are not
    checkpointed: the resumed process computes them again as it goes) and ends where an
    uninterrupted run ends, up to float rounding (replayed states come from other batches)."""
    common = dict(module_layers="top:1", cache_frozen_layers=True, max_steps=30, batch_size=32,
                  max_train_examples=160, checkpoint_every=5, evals=2, max_eval_examples=20)
    full = quick("mnli,qqp", tmp_path / "full", **common)
    assert full["layer_cache"]["replayed_batches"] > 0
    resumed = resumed_after_interruption(monkeypatch, "mnli,qqp", tmp_path / "cut", 15,
                                         **common)
    assert resumed["layer_cache"]["replayed_batches"] > 0
    a, b = open_module(full["module"]), open_module(resumed["module"])
    for key, value in a.weights().items():
        torch.testing.assert_close(value, b.weights()[key], atol=1e-4, rtol=1e-4)
