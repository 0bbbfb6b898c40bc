"""One declaration per training setting: its type, allowed range and help text.

`TrainConfig`'s fields carry a `Setting` in their metadata; the train-* commands' flags and
the recipe checks are derived from it, so a value is refused the same way wherever it comes
from, before anything loads. "Not given" is always None (never 0): a default is chosen later,
by the task or the method, and only for None.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

from .errors import AdapterxlError

Method = Literal["seq_bn", "double_seq_bn", "par_bn", "compacter", "prefix", "lora", "dora",
                 "ia3", "seq_bn_inv"]
Precision = Literal["fp32", "bf16", "fp16"]
Quantize = Literal["none", "8bit", "4bit"]

KEY = "setting"


@dataclass(frozen=True)
class Setting:
    kind: type                       # int, float, str, bool or dict
    help: str = ""
    low: float | None = None         # smallest allowed value (inclusive unless low_open)
    low_open: bool = False
    high: float | None = None        # largest allowed value (inclusive)
    choices: tuple[str, ...] | None = None
    flag: bool = True                # a --flag of the train-* commands
    recipe: bool = True              # a key of a recipe's train sections
    metavar: str | None = None

    def allowed(self) -> str:
        """The allowed values in words, for error messages and help."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        what = {int: "an integer", float: "a number", bool: "true or false",
                str: "a string", dict: "a mapping"}[self.kind]
        if self.low is not None and self.high is not None and not self.low_open:
            return f"{what} from {_num(self.low)} to {_num(self.high)}"
        parts = []
        if self.low is not None:
            parts.append(f"{'greater than' if self.low_open else 'at least'} {_num(self.low)}")
        if self.high is not None:
            parts.append(f"at most {_num(self.high)}")
        return what + (" " + " and ".join(parts) if parts else "")

    def parse(self, text: str, name: str):
        """A command-line string -> a checked value."""
        try:
            value = {int: int, float: float}.get(self.kind, str)(text.strip())
        except ValueError:
            value = None
        if value is None or (self.why(value) and not self.choices):
            raise AdapterxlError(f"{name} must be {self.allowed()}, got {text}")
        return self.check(value, name)

    def check(self, value, name: str):
        """A value (from a flag, a recipe or a caller) -> itself (ints as floats where a
        number is expected), or one clear error naming `name` and the allowed range."""
        why = self.why(value)
        if why and self.choices and isinstance(value, str):
            from .errors import unknown  # with a did-you-mean, like every unknown name
            noun = name.lstrip("-").split(".")[-1].replace("-", " ").replace("_", " ")
            raise AdapterxlError(f"{name}: {unknown(noun, value, self.choices)}")
        if why:
            raise AdapterxlError(f"{name} {why}")
        return float(value) if self.kind is float and value is not None else value

    def why(self, value) -> str | None:
        """What is wrong with `value`, or None. None passes: not given."""
        if value is None:
            return None
        bad = f"must be {self.allowed()}, got {value!r}"
        if self.kind is bool:
            return None if isinstance(value, bool) else bad
        if self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return bad
            if self.kind is int and not isinstance(value, int):
                return bad
            if not math.isfinite(value):
                return bad
            if self.low is not None and (value <= self.low if self.low_open
                                         else value < self.low):
                return bad
            if self.high is not None and value > self.high:
                return bad
            return None
        if not isinstance(value, self.kind):
            return bad
        if self.choices and value not in self.choices:
            return bad
        return None


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def setting(default, kind: type, **kw) -> dataclasses.Field:
    """A dataclass field declared with its Setting."""
    spec = Setting(kind, **kw)
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default),
                                 metadata={KEY: spec})
    return dataclasses.field(default=default, metadata={KEY: spec})


def settings_of(cls) -> dict[str, Setting]:
    """{field name: Setting} for the declared fields of a dataclass, in declaration order."""
    return {f.name: f.metadata[KEY] for f in dataclasses.fields(cls) if KEY in f.metadata}


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def check_fields(obj) -> None:
    """Check every declared field of a dataclass instance (names reported as flags)."""
    for name, spec in settings_of(type(obj)).items():
        value = spec.check(getattr(obj, name), flag_name(name))
        object.__setattr__(obj, name, value)


@dataclass
class TrainConfig:
    """The settings of one training run (train-intermediate / train-target / train-language,
    recipes, and `adapterxl.train`). Fields declared with `setting(...)` carry their type, range
    and help: the flags and the recipe checks derive from them, and a config is checked when
    made.

    Main fields: `task` (a catalogue task, a comma list for multi-task, or "mlm"), `output`
    (the module folder), `model` (backbone: Hub id, path or builtin:NAME), `method` (how the
    module is built, `adapterxl methods`), `method_config` (its settings), `stack` / `init_from`
    / `fuse` / `lang_module` (composition with existing modules), `data` / `data_dir` (hf,
    samples or local files), `precision` (fp32, bf16, fp16; None: bf16 on a bf16 GPU, else
    fp32) and `quantize` (none, 8bit, 4bit), `lr` / `epochs` / `max_steps` / `batch_size` /
    `micro_batch_size` / `max_length` (None: the method's and the task's defaults), `seed`,
    `resume`, and tracking (`report_to`, `logging_steps`, `tracking_dir`,
    `tracking_project`). The comment or help on each field says more."""
    task: str                      # a catalogue task, a comma list (multi-task), or "mlm"
    output: str
    model: str = "xlm-roberta-large"
    method: Method = "seq_bn"
    method_config: dict = setting({}, dict, flag=False)
    stack: list[str] = field(default_factory=list)
    init_from: str | None = None
    fuse: list[str] = field(default_factory=list)
    lang_module: str | None = None
    sampling: str = setting("proportional", str,
                            choices=("proportional", "temperature", "uniform"),
                            help="Multi-task: how often each task's batches come. "
                                 "[default: proportional]")
    sampling_temperature: float | None = setting(
        None, float, low=0, low_open=True, high=1000,
        help="With --sampling temperature: p ∝ size^(1/T) [default: 2].")
    # Language modules (task "mlm"): the language, and its text (a file, or a Hub dataset).
    language: str | None = None
    text: str | None = None
    # A Hub dataset ID[:CONFIG]: a language module's text (its `text` column), or a task's data
    # instead of its catalogue sources, read through `columns` (canonical key -> column(s));
    # `dev_split` selects the model on that split (default: 5% of train held out).
    dataset: str | None = None
    columns: dict = field(default_factory=dict)
    dev_split: str | None = None
    data: str = "hf"
    data_dir: str | None = None
    precision: Precision | None = setting(None, str, choices=("fp32", "bf16", "fp16"),
                                    help="[default: bf16 on a bf16 GPU, else fp32]")
    quantize: Quantize = setting("none", str, choices=("none", "8bit", "4bit"), recipe=False,
                            help="[default: none]")
    lr: float | None = setting(None, float, low=0, low_open=True,
                               help="[default: 1e-4 seq_bn, 3e-4 lora]")
    epochs: float | None = setting(None, float, low=0, low_open=True, high=1e6,
                                   help="[default: the task's]")
    max_steps: int | None = setting(None, int, low=1, high=10**9,
                                    help="Stop after N optimizer steps.")
    batch_size: int | None = setting(None, int, low=1, high=1 << 20,
                                     help="Effective batch [task's].")
    micro_batch_size: int | None = setting(
        None, int, low=1, high=1 << 20,
        help="Per-step batch; gradients accumulate to --batch-size.")
    max_length: int | None = setting(None, int, low=8, high=1 << 20,
                                     help="Tokens per example [default: the task's].")
    warmup_ratio: float = setting(0.1, float, low=0, high=1,
                                  help="Fraction of the steps with a rising learning rate.")
    weight_decay: float = setting(0.01, float, low=0, high=10, help="AdamW's weight decay.")
    # adamw, adamw8bit, paged_adamw, paged_adamw8bit (bitsandbytes)
    optimizer: str = setting("adamw", str, recipe=False,
                             choices=("adamw", "adamw8bit", "paged_adamw", "paged_adamw8bit"),
                             help="adamw, or bitsandbytes' adamw8bit, paged_adamw, "
                                  "paged_adamw8bit (smaller optimizer states; for large "
                                  "trainable parts). [default: adamw]")
    # the trainable module's weights while training: fp32 or bf16
    module_dtype: str = setting("fp32", str, choices=("fp32", "bf16"), recipe=False,
                                help="The trainable module's weights while training (heads "
                                     "stay fp32). [default: fp32]")
    # Recompute activations in backward from the start, for a memory budget below the GPU's
    # (without it, checkpointing turns on only when not even one example fits)
    gradient_checkpointing: bool = setting(
        False, bool, help="Recompute activations in backward (about +50% compute) to fit a "
                          "memory budget; by default only when nothing else fits.")
    evals: int = setting(5, int, low=1, high=10000,
                         help="Dev evaluations (and best-module candidates) per run.")
    max_train_examples: int | None = setting(None, int, low=1, high=1 << 40,
                                             help="Use at most N training examples.")
    max_eval_examples: int | None = setting(None, int, low=1, high=1 << 40,
                                            help="Use at most N dev examples.")
    seed: int = setting(42, int, low=0, high=2**32 - 1, recipe=False,
                        help="Random seed. [default: 42]")
    force: bool = setting(False, bool, recipe=False,
                          help="Use modules trained on another backbone.")
    trust_remote_code: bool = setting(
        False, bool, recipe=False,
        help="Run the backbone checkpoint's own Python model code (auto_map); refused "
             "without this flag.")
    allow_pickle: bool = setting(
        False, bool, recipe=False,
        help="Read a backbone stored as pickle (pytorch_model.bin, with "
             "torch.load(weights_only=True)); refused without this flag.")
    # Optimizer steps between checkpoints (in `<output>.checkpoint/`), besides the one at
    # every dev evaluation. None: every 10% of the run; 0: only at evaluations.
    checkpoint_every: int | None = setting(
        None, int, low=0, high=10**9, metavar="N",
        help="Checkpoint every N optimizer steps, besides every dev evaluation; 0: only at "
             "evaluations [default: every 10% of the run].")
    # continue from the checkpoint of an interrupted run
    resume: bool = setting(False, bool, recipe=False,
                           help="Continue an interrupted run from <output>.checkpoint/ (same "
                                "settings required).")
    overwrite: bool = setting(False, bool, recipe=False,
                              help="Replace a module that already exists at --output.")
    # Experiment tracking (accelerate's trackers); not part of what training computes.
    report_to: Literal["none", "tensorboard", "wandb", "mlflow"] = setting(
        "none", str, choices=("none", "tensorboard", "wandb", "mlflow"),
        help="Track loss, learning rate, gradient norm, tokens/s and dev scores (accelerate's "
             "trackers). [default: none]")
    logging_steps: int = setting(10, int, low=1, high=10**9, metavar="N",
                                 help="Optimizer steps between tracked points. [default: 10]")
    tracking_dir: str | None = setting(
        None, str, metavar="DIR",
        help="Where TensorBoard / MLflow write [default: tracking/ beside the module].")
    tracking_project: str | None = setting(
        None, str, metavar="NAME",
        help="Groups runs (TensorBoard subfolder, W&B group, MLflow experiment) "
             "[default: adapterxl].")

    def __post_init__(self):
        check_fields(self)


# Evaluation settings (the evaluate command's flags and a recipe's `evaluate` section).
EVALUATE = {
    "batch_size": Setting(int, low=1, high=1 << 20, help="[default: 64]"),
    "max_length": Setting(int, low=8, high=1 << 20, help="[default: the task's]"),
    "max_examples": Setting(int, low=1, high=1 << 40, help="Per language."),
    "layer": Setting(int, low=0, high=10000, recipe=False,
                     help="Retrieval: hidden layer to mean-pool [default: 14/24 of the depth]."),
}
