"""Out of GPU memory: the micro-batch finder backs off to what fits, and a run that runs out
mid-way replays the step in smaller pieces: same data, same effective batch, same training.
Out-of-memory errors are simulated (this machine has no GPU)."""
import pytest
import torch

from adapterxl import memory
from adapterxl.errors import AdapterxlError
from adapterxl.modules import ModularModel
from conftest import interrupt_at, quick


def oom_above(limit):
    def try_batch(n):
        if n > limit:
            raise memory.OutOfMemory("CUDA out of memory. Tried to allocate 2.00 GiB")
    return try_batch


@pytest.mark.slow
def test_finder_picks_the_largest_divisor_that_fits():
    lines = []
    assert memory.find_micro_batch(oom_above(8), 32, 32, lines.append) == 8
    assert lines == ["micro-batch finder: 8 fits (32, 16 ran out of memory); gradients "
                     "accumulate to the batch of 32"]
    # Candidates halve and must divide the effective batch: 24 -> 12 -> 6 -> 3 -> 1.
    assert memory.candidates(24, 24) == [24, 12, 6, 3, 1]
    assert memory.find_micro_batch(oom_above(5), 24, 24) == 3
    assert memory.find_micro_batch(oom_above(100), 16, 32) == 16  # fits at once: no log


def test_finder_says_what_to_do_when_nothing_fits():
    with pytest.raises(AdapterxlError, match="out of memory even with a micro-batch of 1 at "
                                             "--max-length 256: lower --max-length"):
        memory.find_micro_batch(oom_above(0), 8, 8, what=" at --max-length 256")


def test_finder_does_not_swallow_other_errors():
    def broken(n):
        raise ValueError("not a memory problem")
    with pytest.raises(ValueError):
        memory.find_micro_batch(broken, 8, 8)


def test_split_keeps_every_row_once():
    batch = {"input_ids": torch.arange(10).view(5, 2), "labels": torch.arange(5)}
    parts = memory.split(batch, 4)
    assert [len(p["labels"]) for p in parts] == [2, 1, 1, 1]
    assert torch.equal(torch.cat([p["input_ids"] for p in parts]), batch["input_ids"])
    assert len(memory.split(batch, 99)) == 5  # never an empty piece


@pytest.mark.slow
def test_out_of_memory_mid_run_backs_off_and_trains_the_same(tmp_path, monkeypatch, caplog):
    common = dict(max_steps=6, evals=2, batch_size=16, max_eval_examples=30)
    plain = quick("mnli", tmp_path / "plain", **common)
    forward = ModularModel.forward
    seen = []

    def small_memory(self, labels=None, **inputs):
        rows = inputs["input_ids"].shape[0]
        seen.append(rows)
        if self.training and rows > 4:  # evaluation is not training: it fits
            raise memory.OutOfMemory("CUDA out of memory. Tried to allocate 1.00 GiB")
        return forward(self, labels=labels, **inputs)
    monkeypatch.setattr(ModularModel, "forward", small_memory)
    caplog.set_level("INFO", logger="adapterxl")
    from adapterxl.training import TrainConfig, train_module

    backed = train_module(TrainConfig(task="mnli", output=str(tmp_path / "backed"),
                                      model="builtin:tiny-xlmr", data="samples", max_length=64,
                                      lr=3e-3, **common), progress=True)
    assert backed["micro_batch_chunks"] == 4 and backed["steps"] == 6
    lines = [r.getMessage() for r in caplog.records]
    assert any("out of memory at step 1" in line and "in 2 pieces" in line for line in lines)
    assert any("in 4 pieces" in line for line in lines)
    assert max(r for r in seen if r <= 4) == 4
    # The same examples in the same steps, the same effective batch.
    assert backed["tokens"] == plain["tokens"] and backed["epochs_seen"] == plain["epochs_seen"]


def test_pieces_weighted_by_their_share_give_the_micro_batch_gradient(tiny):
    """What the back-off relies on: the gradient of a micro-batch equals the sum over its
    pieces of (piece loss x piece rows / micro-batch rows), for mean-reduced losses."""
    from adapterxl.heads import head_config
    from adapterxl.modules import assemble
    from conftest import batch

    model, _ = assemble(tiny, [], method="seq_bn", head=head_config("classification", 64, 3))
    model.eval()  # no dropout: the comparison is exact up to float rounding
    inputs = dict(batch(tiny, n=6), labels=torch.tensor([0, 1, 2, 0, 1, 2]))

    def gradient(pieces):
        model.zero_grad()
        for part in memory.split(inputs, pieces):
            share = len(part["labels"]) / len(inputs["labels"])
            (model(**part)["loss"] * share).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    whole, split4 = gradient(1), gradient(4)
    assert whole.keys() == split4.keys() and whole
    for name in whole:
        assert torch.allclose(whole[name], split4[name], atol=1e-6), name


def test_out_of_memory_with_one_example_per_piece_is_one_clear_line(tmp_path, monkeypatch):
    def no_memory(self, labels=None, **inputs):
        if self.training:
            raise memory.OutOfMemory("CUDA out of memory.")
        raise AssertionError("not reached")
    monkeypatch.setattr(ModularModel, "forward", no_memory)
    with pytest.raises(AdapterxlError, match="out of memory at step 1 with micro-batches of 1 "
                                             "examples; pass a smaller --micro-batch-size"):
        quick("mnli", tmp_path / "x", max_steps=2, batch_size=4)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["adamw8bit", "paged_adamw8bit"])
def test_small_state_optimizers_train_and_resume_exactly(tmp_path, monkeypatch, name):
    """bitsandbytes' 8-bit and paged AdamW train a module, are recorded, and their quantized
    states survive a checkpoint: interrupted and resumed equals uninterrupted."""
    import json

    from adapterxl.modules import open_module

    common = dict(max_steps=8, evals=2, max_eval_examples=20, checkpoint_every=4,
                  optimizer=name, method_config={"reduction_factor": 2})
    full = quick("mnli", tmp_path / "full", **common)
    manifest = json.loads((tmp_path / "full" / "manifest.json").read_text())
    assert manifest["hyperparameters"]["optimizer"] == name
    with monkeypatch.context() as m:
        interrupt_at(m, 4)
        with pytest.raises(AdapterxlError, match="simulated"):
            quick("mnli", tmp_path / "cut", **common)
    resumed = quick("mnli", tmp_path / "cut", resume=True, **common)
    assert resumed["resumed_from_step"] == 4
    a, b = open_module(full["module"]).weights(), open_module(resumed["module"]).weights()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_optimizer_is_refused(tmp_path):
    with pytest.raises(AdapterxlError, match="unknown optimizer 'adam9'"):
        quick("mnli", tmp_path / "x", optimizer="adam9", max_steps=1)


@pytest.mark.slow
def test_finder_turns_gradient_checkpointing_on_only_when_nothing_fits():
    state, lines = {"checkpointing": False}, []

    def try_batch(n):
        if not state["checkpointing"] or n > 2:
            raise memory.OutOfMemory("CUDA out of memory.")

    def turn_on():
        state["checkpointing"] = True
    assert memory.find_micro_batch(try_batch, 16, 16, lines.append, fallback=turn_on) == 2
    assert state["checkpointing"]
    assert "gradient checkpointing is on" in lines[0]
    # When something fits without it, it stays off.
    state["checkpointing"] = False
    assert memory.find_micro_batch(oom_above(4), 16, 16, fallback=turn_on) == 4
    assert not state["checkpointing"]


@pytest.mark.parametrize("method", ["seq_bn", "lora"])
def test_gradient_checkpointing_gives_the_same_gradients(method):
    from adapterxl.backbone import load_backbone
    from adapterxl.heads import head_config
    from adapterxl.modules import assemble
    from conftest import batch

    grads = []
    for checkpointing in (False, True):
        bb = load_backbone("builtin:tiny-xlmr")
        torch.manual_seed(0)
        model, _ = assemble(bb, [], method=method,
                            head=head_config("classification", 64, 3, "mean"))
        if checkpointing:
            model.gradient_checkpointing()
        assert model.checkpointing == checkpointing
        model.train()
        for m in model.modules():  # training mode (checkpointing is active), no dropout noise
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        model(**batch(bb, n=4), labels=torch.tensor([0, 1, 2, 0]))["loss"].backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6), name


@pytest.mark.slow
def test_bf16_module_weights_train_and_save_as_fp32(tmp_path, monkeypatch):
    from adapterxl.modules import ModularModel as MM
    from adapterxl.modules import load_for_inference, open_module
    from adapterxl.backbone import load_backbone
    from conftest import batch

    dtypes = []
    cast = MM.cast_trainable

    def spy(self, slot, dtype):
        cast(self, slot, dtype)
        dtypes.extend(p.dtype for p in self._slot_params(slot).values())
    monkeypatch.setattr(MM, "cast_trainable", spy)
    result = quick("mnli", tmp_path / "bf16", max_steps=6, evals=1, precision="bf16",
                   module_dtype="bf16")
    assert dtypes and set(dtypes) == {torch.bfloat16}
    mod = open_module(result["module"])
    assert all(t.dtype == torch.float32 for t in mod.weights().values())
    net = load_for_inference(load_backbone("builtin:tiny-xlmr", precision="bf16"), mod)
    with torch.no_grad():
        assert torch.isfinite(net(**batch(net.backbone))["logits"]).all()
    with pytest.raises(AdapterxlError, match="--module-dtype bf16 needs --precision bf16"):
        quick("mnli", tmp_path / "x", max_steps=1, precision="fp32", module_dtype="bf16")


def test_gradient_checkpointing_flag_trains_the_same_module(tmp_path):
    """--gradient-checkpointing only trades compute for memory: recomputation replays the
    dropout masks, so the module comes out the same."""
    from adapterxl.modules import open_module

    plain = quick("mnli", tmp_path / "plain", max_steps=4, evals=1)
    ckpt = quick("mnli", tmp_path / "ckpt", max_steps=4, evals=1, gradient_checkpointing=True)
    assert ckpt["gradient_checkpointing"] is True and plain["gradient_checkpointing"] is False
    a, b = open_module(plain["module"]).weights(), open_module(ckpt["module"]).weights()
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
