"""8-bit and 4-bit backbones: forward and backward through modules on CPU; embeddings and
heads stay unquantized; only module and head parameters receive gradients."""
import pytest
import torch

from adapterxl.backbone import load_backbone
from adapterxl.heads import head_config
from adapterxl.modules import assemble
from conftest import batch


@pytest.mark.parametrize("quantize", ["8bit", "4bit"])
@pytest.mark.parametrize("method", ["seq_bn", "lora"])
def test_quantized_forward_backward(quantize, method):
    import bitsandbytes as bnb

    bb = load_backbone("builtin:tiny-xlmr", quantize=quantize)
    qtype = bnb.nn.Linear8bitLt if quantize == "8bit" else bnb.nn.Linear4bit
    assert any(isinstance(m, qtype) for m in bb.model.modules()), "nothing was quantized"
    emb = bb.model.get_input_embeddings()
    assert type(emb) is torch.nn.Embedding and emb.weight.dtype == torch.float32

    model, _ = assemble(bb, [], method=method, head=head_config("classification", 64, 3))
    model.train()
    inputs = batch(bb)
    out = model(labels=torch.tensor([0, 1, 2, 0, 1, 2]), **inputs)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None and torch.isfinite(p.grad).all()
                             for _, p in trainable)
    assert any(p.grad.abs().sum() > 0 for n, p in trainable if "axl0" in n)
    assert not any(isinstance(m, qtype) for m in model.head.modules())


def test_fingerprint_is_independent_of_quantization():
    assert (load_backbone("builtin:tiny-xlmr").fingerprint
            == load_backbone("builtin:tiny-xlmr", quantize="8bit").fingerprint)
