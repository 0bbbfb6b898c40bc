"""`adapterxl plan`: predicted peak training memory and the micro-batch that fits a GPU, from a
model's config alone. Thin, like every command: parse, call one library function, print."""
from __future__ import annotations

import json

from typing import get_args

import click

from ..settings import Precision, Quantize
from ._options import key_values


def register(main: click.Group) -> None:
    """Add `plan` to the `adapterxl` group."""

    @main.command("plan")
    @click.option("--model", default="xlm-roberta-large", show_default=True,
                  help="HF id (its config.json only: Hub cache or download; never weights), a "
                       "checkpoint directory, a config.json file, or builtin:<name>.")
    @click.option("--method", default="seq_bn", show_default=True)
    @click.option("--method-config", "method_cfg", multiple=True, metavar="K=V",
                  help="Method settings, e.g. reduction_factor=8, r=16, matrices=q,k,v,o.")
    @click.option("--module-layers", default=None, metavar="top:K|A-B|I,J",
                  help="The module only in these layers (as train-*'s --module-layers).")
    @click.option("--quantize", default="none", show_default=True,
                  type=click.Choice(get_args(Quantize)))
    @click.option("--precision", default="bf16", show_default=True,
                  type=click.Choice(get_args(Precision)))
    @click.option("--seq-len", type=int, default=256, show_default=True,
                  help="Padded sequence length of a micro-batch.")
    @click.option("--batch", type=int, default=32, show_default=True,
                  help="Effective batch (micro-batch x accumulation).")
    @click.option("--gpu-memory", default=None, metavar="SIZE",
                  help="e.g. 80GiB, 80GB, h100, h200 [default: both h100 and h200].")
    @click.option("--head", default="classification", show_default=True)
    @click.option("--labels", "num_labels", type=int, default=3, show_default=True)
    @click.option("--attention", default="auto", show_default=True,
                  type=click.Choice(["auto", "sdpa", "eager"]),
                  help="auto: what transformers uses for the architecture by default.")
    @click.option("--trust-remote-code", is_flag=True)
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    def plan_cmd(model, method, method_cfg, module_layers, quantize, precision, seq_len, batch, gpu_memory,
                 head, num_labels, attention, trust_remote_code, as_json):
        """Predict peak GPU memory of training a module (weights per component, module
        states, activations) and the largest micro-batch that fits. Not yet checked against
        GPU measurements."""
        from ..planning import format_plan, plan

        result = plan(model, method=method, method_config=key_values(method_cfg),
                      quantize=quantize, precision=precision, seq_len=seq_len, batch=batch,
                      gpu_memory=gpu_memory, head=head, num_labels=num_labels,
                      attention=attention, trust_remote_code=trust_remote_code,
                      module_layers=module_layers)
        click.echo(json.dumps(result, indent=2) if as_json else format_plan(result))
