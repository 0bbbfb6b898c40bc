"""One declaration per training setting: its type, allowed range, help text, and where it can
be set and what it takes part in.

Every `TrainConfig` field carries a `Setting` in its metadata; from it derive the train-*
commands' flags (`adapterxl.cli`), the keys of a recipe's train sections
(`experiments.recipe.TRAIN_KEYS`), the module cache key (`experiments.grid.KEYED_SETTINGS`),
the settings a resumed run must agree with (`checkpoint.NOT_COMPARED`) and the manifest's
hyperparameters (`hyperparameters`). A value is refused the same way wherever it comes from,
before anything loads. "Not given" is always None (never 0): a default is chosen later, by
the task or the method, and only for None.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, get_args

from .errors import AdapterxlError

Method = Literal["seq_bn", "double_seq_bn", "par_bn", "compacter", "prefix", "lora", "dora",
                 "ia3", "seq_bn_inv"]
Precision = Literal["fp32", "bf16", "fp16"]
Quantize = Literal["none", "8bit", "4bit"]
ReportTo = Literal["none", "tensorboard", "wandb", "mlflow"]
Optimizer = Literal["adamw", "adamw8bit", "paged_adamw", "paged_adamw8bit"]
ModuleDtype = Literal["fp32", "bf16"]
Sampling = Literal["proportional", "temperature", "uniform"]

KEY = "setting"


@dataclass(frozen=True)
class Setting:
    kind: type                       # int, float, str, bool, list or dict
    help: str = ""
    low: float | None = None         # smallest allowed value (inclusive unless low_open)
    low_open: bool = False
    high: float | None = None        # largest allowed value (inclusive)
    choices: tuple[str, ...] | None = None
    # False: free-form (a path, a Hub id, a task or method name), checked where it is used,
    # with the context a good message needs (did-you-mean over the catalogue, a missing file).
    checked: bool = True
    flag: bool = True                # a --flag of the train-* commands
    recipe: bool = True              # a key of a recipe's train sections
    # Why a field is not a flag or not a recipe key (docs/EXPERIMENTS.md shows it): the test
    # that every field is settable everywhere accepts a reason instead.
    why_not: str = ""
    # Changes what a module learns, so a recipe setting it is part of the module cache key.
    # True unless said otherwise: a new setting then retrains rather than wrongly reuses.
    keyed: bool = True
    # A resumed run must have the same value (checked against the checkpoint). True unless
    # it cannot change what training computes; existing checkpoints store the compared set,
    # so changing it refuses their resume.
    compared: bool = True
    # Recorded in the module manifest's `hyperparameters` (what the run computed with); False
    # for places, sources and run control, which the manifest records its own way or not at all.
    manifest: bool = True
    metavar: str | None = None
    # The command line's presentation: "task" (train-intermediate, train-target) or "language"
    # (train-language) when the flag is only on those; a short alias; a required flag; shell
    # completion ("tasks", "methods"); train-language's own help and default.
    only: str | None = None
    short: str | None = None
    required: bool = False
    complete: str | None = None
    language_help: str | None = None
    language_default: object = None
    # For a string with a form of its own: value -> what is wrong with it, or None.
    syntax: object = None

    def allowed(self) -> str:
        """The allowed values in words, for error messages and help."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        what = {int: "an integer", float: "a number", bool: "true or false",
                str: "a string", dict: "a mapping", list: "a list"}[self.kind]
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
        if value is None or (self.why(value) and not self.choices and self.syntax is None):
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
        if value is None or not self.checked:
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
        return self.syntax(value) if self.syntax is not None else None


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


def layer_selection(spec: str, num_layers: int) -> list[int]:
    """`--module-layers` -> the sorted layer indices it selects of `num_layers`: "top:K" (the
    upper K), "A-B" (inclusive), "I", or a comma list of these."""
    chosen, why = _selection(spec, num_layers)
    if why:
        raise AdapterxlError(f"--module-layers {why}")
    return chosen


def _selection(spec: str, num_layers: int | None) -> tuple[list[int], str | None]:
    """(the layers, None) or ([], what is wrong). With `num_layers` None only the form is
    checked: the backbone's depth is known when it loads."""
    def bad(why: str) -> tuple[list[int], str]:
        return [], (f"must be top:K, A-B or a comma list of layers (e.g. top:6 or 6-11), got "
                    f"{spec!r}: {why}")

    chosen: set[int] = set()
    for part in (p.strip() for p in spec.split(",")):
        head, sep, rest = part.partition(":")
        lo_text, dash, hi_text = part.partition("-")
        try:
            if sep:
                if head != "top":
                    return bad(f"unknown selection {part!r}")
                k = int(rest)
                if k < 1:
                    return bad("top:K needs K of at least 1")
                if num_layers is not None:
                    if k > num_layers:
                        return bad(f"the backbone has {num_layers} layers")
                    chosen.update(range(num_layers - k, num_layers))
                continue
            lo, hi = (int(lo_text), int(hi_text)) if dash else (int(part), int(part))
        except ValueError:
            return bad(f"cannot read {part!r}")
        if lo < 0 or hi < lo:
            return bad(f"{part!r} is not a range of layers (lowest first, from 0)")
        if num_layers is not None and hi >= num_layers:
            return bad(f"layer {hi} does not exist: the backbone has {num_layers} layers "
                       f"(0-{num_layers - 1})")
        chosen.update(range(lo, hi + 1))
    return sorted(chosen), None


@dataclass
class TrainConfig:
    """The settings of one training run: the train-intermediate / train-target /
    train-language commands, recipes (`adapterxl run`) and `adapterxl.train` all make one.

    Every field is declared here once, with `setting(...)`: its type and range, its help, and
    whether it is a flag of the train-* commands (every field is one, on the commands it
    applies to), a key of a recipe's train sections (or `why_not` says why not: the grid,
    the backbone or the runner sets it), part of the module cache key, compared on resume,
    and recorded in the manifest. A config is checked when made. `table()` lists them all
    (docs/EXPERIMENTS.md shows it).

    Main fields: `task` (a catalogue task, a comma list for multi-task, or "mlm"), `output`
    (the module folder), `model` (backbone: Hub id, path or builtin:NAME), `method` (how the
    module is built, `adapterxl methods`) and `method_config`, `stack` / `init_from` / `fuse` /
    `lang_module` (composition with existing modules), `data` / `data_dir` / `dataset` (where
    the examples come from), `precision` and `quantize`, `lr` / `epochs` / `max_steps` /
    `batch_size` / `max_length` (None: the method's and the task's defaults), `seed`,
    `resume`, and tracking (`report_to`, ...). Each field's help says more."""
    task: str = setting(
        dataclasses.MISSING, str, checked=False, only="task", required=True,
        complete="tasks", manifest=False, recipe=False,
        why_not="the grid's intermediates and targets",
        help="Task name (see `adapterxl tasks`); a comma list trains one shared module with a "
             "head per task (multi-task).")
    output: str = setting(
        dataclasses.MISSING, str, checked=False, short="-o", keyed=False, compared=False,
        manifest=False, recipe=False, why_not="the module cache chooses the folder",
        help="Module directory to write [default: runs/{task}].",
        language_help="Module directory to write [default: runs/lang-{language}].")
    model: str = setting(
        "xlm-roberta-large", str, checked=False, manifest=False, recipe=False,
        why_not="the recipe's `model` or the grid's backbones",
        help="Backbone: HF id, local path, builtin:tiny-<arch> (xlmr, xlmr-xl, mt5, deberta, "
             "bert, llama, qwen2; random weights) or builtin:e5-small (real weights, the e5 "
             "extra).")
    method: Method = setting(
        "seq_bn", str, checked=False, complete="methods", language_default="seq_bn_inv",
        recipe=False, why_not="the grid's methods",
        help="seq_bn, double_seq_bn, par_bn, compacter, prefix, lora, dora, ia3 or seq_bn_inv "
             "(see `adapterxl methods`).")
    method_config: dict = setting(
        {}, dict, metavar="KEY=VALUE",
        help="Override a method setting, e.g. reduction_factor=8, r=16, matrices=q,k,v, "
             "dropout=0.1.")
    # Composition with existing modules (a recipe's grid: compositions over intermediates).
    stack: list[str] = setting(
        [], list, checked=False, only="task", metavar="DIR[,DIR]", manifest=False,
        recipe=False, why_not="the grid's compositions (stack) over its intermediates",
        help="Modules to stack beneath the new one (frozen, bottom first).")
    init_from: str | None = setting(
        None, str, checked=False, metavar="DIR", manifest=False, recipe=False,
        why_not="the grid's compositions (init_from) over its intermediates",
        help="Continue training this module's weights on the new task.")
    fuse: list[str] = setting(
        [], list, checked=False, only="task", metavar="DIR,DIR[,...]", manifest=False,
        recipe=False, why_not="the grid's compositions (fuse) over its intermediates",
        help="Train a fusion of these modules (and a head) instead of a new module: "
             "AdapterFusion for bottleneck modules, a learned weighted combination for LoRA "
             "modules.")
    lang_module: str | None = setting(
        None, str, checked=False, only="task", metavar="DIR", manifest=False, recipe=False,
        why_not="recipes do not train or stack language modules yet",
        help="A language module (train-language) to put first in the stack.")
    # AdapterDrop-style: the module only in these encoder layers. Backward then stops at the
    # lowest of them (nothing below needs a gradient), so training costs less; the layers are
    # recorded in the method config (leave_out), so loading places the module identically.
    module_layers: str | None = setting(
        None, str, metavar="top:K|A-B|I,J", syntax=lambda v: _selection(v, None)[1],
        help="Encoder layers that get the module (0 = lowest): top:K (the upper K), A-B, or a "
             "comma list of these [default: all]. Backward stops at the lowest one.")
    # The layers below the lowest module are then a fixed function of the input (their
    # dropout off): computed once per training sequence, replayed from epoch 2 on.
    cache_frozen_layers: bool = setting(
        False, bool,
        help="With --module-layers: keep each training sequence's hidden states below the "
             "lowest module (dropout off there) and start later epochs and dev evaluations "
             "from them.")
    sampling: Sampling = setting(
        "proportional", str, choices=get_args(Sampling), only="task",
        help="Multi-task: how often each task's batches come. [default: proportional]")
    sampling_temperature: float | None = setting(
        None, float, low=0, low_open=True, high=1000, only="task",
        help="With --sampling temperature: p ∝ size^(1/T) [default: 2].")
    # Language modules (task "mlm"): the language, and its text (a file, or a Hub dataset).
    language: str | None = setting(
        None, str, checked=False, only="language", required=True, manifest=False,
        recipe=False, why_not="recipes train task modules; a language module is "
                              "train-language's",
        help="ISO code of the language, e.g. sw.")
    text: str | None = setting(
        None, str, checked=False, only="language", metavar="FILE", manifest=False,
        recipe=False, why_not="recipes train task modules; a language module is "
                              "train-language's",
        help="Raw text, one passage per line.")
    # A Hub dataset ID[:CONFIG]: a language module's text (its `text` column), or a task's data
    # instead of its catalogue sources, read through `columns` (canonical key -> column(s));
    # `dev_split` selects the model on that split (default: 5% of train held out).
    dataset: str | None = setting(
        None, str, checked=False, metavar="ID[:CONFIG]", manifest=False, recipe=False,
        why_not="a recipe's data comes from `data`, `data_dirs` and `variants`",
        help="Train on this Hub dataset instead of the task's catalogue sources (its train "
             "split; see --columns, --dev-split).",
        language_help="A Hub dataset with a `text` column, e.g. "
                      "wikimedia/wikipedia:20231101.sw.")
    columns: dict = setting(
        {}, dict, checked=False, only="task", metavar="KEY=COL[,COL]", manifest=False,
        recipe=False, why_not="a recipe's data comes from `data`, `data_dirs` and `variants`",
        help="With --dataset: which columns hold the format's canonical keys, e.g. "
             "text=premise,hypothesis label=label (docs/FORMATS.md).")
    dev_split: str | None = setting(
        None, str, checked=False, only="task", metavar="SPLIT", manifest=False, recipe=False,
        why_not="a recipe's data comes from `data`, `data_dirs` and `variants`",
        help="With --dataset: the split for model selection [default: 5% of train held out].")
    data: str = setting(
        "hf", str, checked=False, manifest=False, recipe=False,
        why_not="the recipe's top-level `data`",
        help="hf (Hugging Face datasets) or samples (bundled synthetic data) [default: hf].",
        language_help="samples: the bundled sample text of --language (instead of --text or "
                      "--dataset).")
    data_dir: str | None = setting(
        None, str, checked=False, metavar="DIR", manifest=False, recipe=False,
        why_not="the recipe's `data_dirs` and `variants`",
        help="Local files <split>[.<lang>].<ext>, ext one of jsonl, tsv, json, conllu, conll, "
             "txt, csv (the canonical rows, or a dataset's original format), or XTREME's "
             "download layout; see docs/FORMATS.md.")
    precision: Precision | None = setting(None, str, choices=get_args(Precision),
                                          help="[default: bf16 on a bf16 GPU, else fp32]")
    quantize: Quantize = setting("none", str, choices=get_args(Quantize), recipe=False,
                                 why_not="a backbone's: grid.backbones[].quantize",
                                 help="[default: none]")
    lr: float | None = setting(None, float, low=0, low_open=True,
                               help="[default: 1e-4 seq_bn, 3e-4 lora]")
    epochs: float | None = setting(None, float, low=0, low_open=True, high=1e6,
                                   help="[default: the task's]")
    max_steps: int | None = setting(None, int, low=1, high=10**9,
                                    help="Stop after N optimizer steps.")
    batch_size: int | None = setting(None, int, low=1, high=1 << 20,
                                     help="Effective batch [task's].")
    # Only how the effective batch is split into steps: memory, not what is learned.
    micro_batch_size: int | None = setting(
        None, int, low=1, high=1 << 20, keyed=False,
        help="Per-step batch; gradients accumulate to --batch-size.")
    max_length: int | None = setting(None, int, low=8, high=1 << 20,
                                     help="Tokens per example [default: the task's].")
    warmup_ratio: float = setting(0.1, float, low=0, high=1,
                                  help="Fraction of the steps with a rising learning rate.")
    weight_decay: float = setting(0.01, float, low=0, high=10, help="AdamW's weight decay.")
    # adamw, adamw8bit, paged_adamw, paged_adamw8bit (bitsandbytes)
    optimizer: Optimizer = setting(
        "adamw", str, choices=get_args(Optimizer),
        help="adamw, or bitsandbytes' adamw8bit, paged_adamw, paged_adamw8bit (smaller "
             "optimizer states; for large trainable parts). [default: adamw]")
    # the trainable module's weights while training: fp32 or bf16
    module_dtype: ModuleDtype = setting(
        "fp32", str, choices=get_args(ModuleDtype),
        help="The trainable module's weights while training (heads stay fp32). "
             "[default: fp32]")
    # Recompute activations in backward from the start, for a memory budget below the GPU's
    # (without it, checkpointing turns on only when not even one example fits). Memory only.
    gradient_checkpointing: bool = setting(
        False, bool, keyed=False,
        help="Recompute activations in backward (about +50% compute) to fit a memory budget; "
             "by default only when nothing else fits.")
    evals: int = setting(5, int, low=1, high=10000,
                         help="Dev evaluations (and best-module candidates) per run.")
    max_train_examples: int | None = setting(None, int, low=1, high=1 << 40,
                                             help="Use at most N training examples.")
    max_eval_examples: int | None = setting(None, int, low=1, high=1 << 40,
                                            help="Use at most N dev examples.")
    seed: int = setting(42, int, low=0, high=2**32 - 1, recipe=False,
                        why_not="the grid's seeds", help="Random seed. [default: 42]")
    # Permissions: what the run may read or run, not what it computes.
    force: bool = setting(False, bool, keyed=False, manifest=False, recipe=False,
                          why_not="a recipe's modules are trained on its own backbones",
                          help="Use modules trained on another backbone.")
    trust_remote_code: bool = setting(
        False, bool, keyed=False, recipe=False,
        why_not="a permission to run code, given on the command line, not by a shared file",
        help="Run the backbone checkpoint's own Python model code (auto_map); refused "
             "without this flag.")
    allow_pickle: bool = setting(
        False, bool, keyed=False, compared=False, manifest=False, recipe=False,
        why_not="a permission to unpickle, given on the command line, not by a shared file",
        help="Read a backbone stored as pickle (pytorch_model.bin, with "
             "torch.load(weights_only=True)); refused without this flag.")
    # Optimizer steps between checkpoints (in `<output>.checkpoint/`), besides the one at
    # every dev evaluation. None: every 10% of the run; 0: only at evaluations.
    checkpoint_every: int | None = setting(
        None, int, low=0, high=10**9, metavar="N", keyed=False, compared=False,
        manifest=False,
        help="Checkpoint every N optimizer steps, besides every dev evaluation; 0: only at "
             "evaluations [default: every 10% of the run].")
    # Run control: continue from the checkpoint of an interrupted run; replace a module.
    resume: bool = setting(False, bool, keyed=False, compared=False, manifest=False,
                           recipe=False,
                           why_not="`adapterxl run` resumes interrupted modules by itself",
                           help="Continue an interrupted run from <output>.checkpoint/ (same "
                                "settings required).")
    overwrite: bool = setting(False, bool, keyed=False, compared=False, manifest=False,
                              recipe=False, why_not="`adapterxl run` owns its cache folders",
                              help="Replace a module that already exists at --output.")
    # Experiment tracking (accelerate's trackers); not part of what training computes.
    report_to: ReportTo = setting(
        "none", str, choices=get_args(ReportTo), keyed=False, compared=False, manifest=False,
        help="Track loss, learning rate, gradient norm, tokens/s and dev scores (accelerate's "
             "trackers). [default: none]")
    logging_steps: int = setting(10, int, low=1, high=10**9, metavar="N", keyed=False,
                                 compared=False, manifest=False,
                                 help="Optimizer steps between tracked points. [default: 10]")
    tracking_dir: str | None = setting(
        None, str, metavar="DIR", keyed=False, compared=False, manifest=False,
        help="Where TensorBoard / MLflow write [default: tracking/ beside the module].")
    tracking_project: str | None = setting(
        None, str, metavar="NAME", keyed=False, compared=False, manifest=False,
        help="Groups runs (TensorBoard subfolder, W&B group, MLflow experiment) "
             "[default: adapterxl].")

    def __post_init__(self):
        check_fields(self)


def names(**want: bool) -> tuple[str, ...]:
    """TrainConfig's fields whose Setting has every given attribute as given, in declaration
    order: names(recipe=True, keyed=True) is the cache key's settings."""
    return tuple(k for k, spec in settings_of(TrainConfig).items()
                 if all(getattr(spec, a) == v for a, v in want.items()))


def hyperparameters(cfg: TrainConfig) -> dict:
    """The settings a module manifest records (what the run computed with)."""
    keep = names(manifest=True)
    return {k: v for k, v in dataclasses.asdict(cfg).items() if k in keep}


def table() -> str:
    """Every training setting as a Markdown table: its flag, its recipe key (or why not), what
    it allows and what it takes part in."""
    rows = ["| setting | flag | recipe key | allowed | cache key | resume | manifest |",
            "|---|---|---|---|---|---|---|"]
    yes = {True: "yes", False: "-"}
    for name, spec in settings_of(TrainConfig).items():
        where = {"task": " (train-intermediate, train-target)",
                 "language": " (train-language)"}.get(spec.only or "", "")
        flag = f"`{flag_name(name)}`{where}" if spec.flag else f"- ({spec.why_not})"
        recipe = f"`{name}`" if spec.recipe else f"- ({spec.why_not})"
        allowed = spec.allowed() if spec.checked else f"{spec.allowed()} (checked when used)"
        rows.append(f"| {name} | {flag} | {recipe} | {allowed} | "
                    f"{yes[spec.keyed]} | "
                    f"{yes[spec.compared]} | {yes[spec.manifest]} |")
    return "\n".join(rows)


# Evaluation settings (the evaluate command's flags and a recipe's `evaluate` section).
EVALUATE = {
    "batch_size": Setting(int, low=1, high=1 << 20, help="[default: 64]"),
    "max_length": Setting(int, low=8, high=1 << 20, help="[default: the task's]"),
    "max_examples": Setting(int, low=1, high=1 << 40, help="Per language."),
    "layer": Setting(int, low=0, high=10000, recipe=False,
                     help="Retrieval: hidden layer to mean-pool [default: 14/24 of the depth]."),
}
