"""Sharing modules: push to / pull from the Hugging Face Hub or a local registry, the model
card, finding modules, and resolving `org/name[@revision]` to a local folder for every place
that takes a module (`resolve_module`, called at the edges: modules/ itself reads folders only).

A local registry (`--registry DIR` or $ADAPTERXL_REGISTRY) has the layout of Hub repos:
`DIR/<org>/<name>/<revision>/...` (revision `main` unless given). Pulled modules live in
`home()/hub/<org>/<name>/<revision>/`; a pull stages the download beside that folder, checks
it (no symlinks or special files, no path leaving the folder, every weights file's sha256
against its manifest, including the stack/ and fused/ copies) and only then renames it into
place, so the cache never holds a partial or unverified module.

Every Hub call goes through `huggingface_hub` (HfApi, snapshot_download); the token comes from
HF_TOKEN or the login cache (`huggingface_hub.get_token`) and is never printed or logged.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from . import _io
from .errors import AdapterxlError

REGISTRY_ENV = "ADAPTERXL_REGISTRY"
DEFAULT_REVISION = "main"

# What a pull fetches: an adapterxl module (with its stack/ and fused/ copies and evaluation
# results) or an adapter in PEFT's or the adapters library's format. Nothing else (a full
# model's weights in a mistaken repo are not downloaded). fnmatch's `*` also matches `/`.
PULL_PATTERNS = [
    "*manifest.json", "*module.safetensors", "*head.safetensors", "README.md",
    "eval/*results.json",
    # PEFT / adapters formats (import them with `adapterxl import`)
    "adapter_config.json", "adapter_model.safetensors", "adapter_model.bin",
    "adapter.safetensors", "pytorch_adapter.bin", "head_config.json",
]
FOREIGN_MARKER = "adapter_config.json"

_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
_HUB_ID = re.compile(rf"^({_PART})/({_PART})(?:@([A-Za-z0-9][A-Za-z0-9._/-]{{0,199}}))?$")


# ---- ids, registries, the cache -------------------------------------------------------------
def is_hub_id(spec: str) -> bool:
    """`org/name` or `org/name@revision` (Hugging Face repo id syntax)."""
    return bool(_HUB_ID.match(str(spec))) and ".." not in str(spec)


def parse_spec(spec: str) -> tuple[str, str]:
    """`org/name[@revision]` -> (repo_id, revision); refuses anything that is not one."""
    m = _HUB_ID.match(str(spec))
    if not m or ".." in str(spec) or "--" in m.group(2):
        raise AdapterxlError(f"{spec!r} is not a Hub module id (expected org/name or "
                             f"org/name@revision)")
    return f"{m.group(1)}/{m.group(2)}", m.group(3) or DEFAULT_REVISION


def registry_location(registry: str | os.PathLike | None = None) -> str | Path:
    """"hf" (the Hugging Face Hub) or a local registry directory: the argument, else
    $ADAPTERXL_REGISTRY, else the Hub."""
    registry = registry if registry not in (None, "") else os.environ.get(REGISTRY_ENV) or "hf"
    return "hf" if str(registry) == "hf" else Path(registry).expanduser()


def _revision_dir(revision: str) -> str:
    return revision.replace("/", "--")


def cache_dir(repo_id: str, revision: str = DEFAULT_REVISION) -> Path:
    """Where a pulled module lives: home()/hub/<org>/<name>/<revision>."""
    from .backbone import home

    return home() / "hub" / repo_id / _revision_dir(revision)


def _registry_dir(root: Path, repo_id: str, revision: str) -> Path:
    return root / repo_id / _revision_dir(revision)


def _where(repo_id: str, revision: str) -> str:
    return repo_id if revision == DEFAULT_REVISION else f"{repo_id}@{revision}"


def _token() -> str | None:
    import huggingface_hub

    return huggingface_hub.get_token()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


def _hub_errors() -> tuple[type[BaseException], ...]:
    """Failures of the network, the server, authentication or quota."""
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    # HfHubHTTPError derives from the HTTP client's own HTTPError (httpx on hub 1, httpx2 on
    # hub 2); the root of that client's exceptions also covers its connect and timeout errors,
    # so we need not import (or know) the client.
    client = HfHubHTTPError.__bases__[0].__module__.split(".")[0]
    root = [c for c in HfHubHTTPError.__mro__ if c.__module__.split(".")[0] == client][-1]
    return (HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled, root,
            ConnectionError, TimeoutError)


# ---- safety and integrity -------------------------------------------------------------------
def check_tree(root: Path, what: str) -> list[str]:
    """The files under `root` (relative posix paths); refuses symlinks, special files and
    anything that resolves outside `root`."""
    root = Path(root)
    real_root = root.resolve()
    files = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                raise AdapterxlError(f"{what}: {rel} is a symbolic link; refused (a module "
                                     f"holds plain files only)")
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise AdapterxlError(f"{what}: {rel} is not a regular file; refused")
            if not path.resolve().is_relative_to(real_root):
                raise AdapterxlError(f"{what}: {rel} points outside the module; refused")
            if stat.S_ISREG(mode):
                files.append(rel)
    return sorted(files)


def _check_safetensors(path: Path, what: str) -> None:
    """A file named .safetensors must parse as one (its sha256 matching proves only that it is
    what was uploaded)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():
                f.get_slice(key).get_shape()
    except (SafetensorError, OSError, ValueError) as e:
        raise AdapterxlError(f"{what} is not a valid safetensors file "
                             f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                             f"refused") from e


def _check_pulled(root: Path, what: str) -> str:
    """Checks a downloaded folder; returns its kind: "module" or "foreign"."""
    from .modules.store import MANIFEST, open_module

    files = check_tree(root, what)
    if (root / MANIFEST).is_file():
        # every weights file, of the module and of its stack/ and fused/ copies
        open_module(root).verify(deep=True, label=what)
        kind = "module"
    elif (root / FOREIGN_MARKER).is_file():
        kind = "foreign"
    else:
        kind = None
    if kind is not None:
        for rel in files:
            if rel.endswith(".safetensors"):
                _check_safetensors(root / rel, f"{what}: {rel}")
        return kind
    raise AdapterxlError(f"{what} holds neither an adapterxl module (no {MANIFEST}) nor a "
                         f"PEFT/adapters adapter (no {FOREIGN_MARKER})")


def _copy_matching(src: Path, dest: Path, patterns: list[str], what: str) -> list[str]:
    """Copy the files of `src` matching `patterns` into `dest` (refusing unsafe trees)."""
    copied = []
    for rel in check_tree(src, what):
        if any(fnmatch.fnmatch(rel, p) for p in patterns):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, target)
            copied.append(rel)
    return copied


# ---- pull -----------------------------------------------------------------------------------
def pull(spec: str, registry: str | os.PathLike | None = None) -> Path:
    """Download `org/name[@revision]` into home()/hub/<org>/<name>/<revision> (replacing what
    was there only once the new copy is complete and verified). Returns the local folder: an
    adapterxl module, or an adapter in PEFT/adapters format (see `adapterxl import`)."""
    repo_id, revision = parse_spec(spec)
    source = registry_location(registry)
    where = _where(repo_id, revision)
    target = cache_dir(repo_id, revision)
    retry = f"retry with `adapterxl pull {where}`"
    if source != "hf" and not _registry_dir(source, repo_id, revision).is_dir():
        raise AdapterxlError(f"module {where} is not in the registry {source} (no folder "
                             f"{_registry_dir(source, repo_id, revision)})")
    with _io.staged(target) as staged:
        if source == "hf":
            import huggingface_hub

            from .connectivity import hub_unreachable, unreachable_hint

            why = hub_unreachable()
            if why:
                raise AdapterxlError(f"cannot pull {where}: {unreachable_hint(why)}; nothing "
                                     f"was changed")
            try:
                huggingface_hub.snapshot_download(
                    repo_id, revision=revision, repo_type="model", local_dir=staged,
                    allow_patterns=PULL_PATTERNS, token=_token())
            except _hub_errors() as e:
                raise AdapterxlError(f"cannot pull {where} from the Hugging Face Hub "
                                     f"({_first_line(e)}); nothing was changed; {retry}") from e
            shutil.rmtree(staged / ".cache", ignore_errors=True)  # huggingface_hub's metadata
            what = f"pulled module {where}"
        else:
            src = _registry_dir(source, repo_id, revision)
            what = f"module {where} in the registry {source}"
            _copy_matching(src, staged, PULL_PATTERNS, what)
        try:
            _check_pulled(staged, what)
        except AdapterxlError as e:
            raise AdapterxlError(f"{e}; nothing was changed; {retry}") from e
    return target


def resolve_module(ref) -> Path:
    """The local folder of the module `ref`, for `open_module`: a folder as it is; a Hub id
    `org/name[@revision]` that is not a local path, pulled on first use from
    $ADAPTERXL_REGISTRY or the Hub. Anything else comes back as a path, which open_module
    then reports missing. Every place that takes a module (the edges: CLI, API, training,
    evaluation) resolves it here."""
    from .modules.store import MANIFEST

    spec, path = str(ref), Path(ref)
    # `runs/mnlii` is Hub id syntax too; when its parent folder exists here, it is a
    # mistyped local path, not an org on the Hub.
    local = path.parent.is_dir() and str(path.parent) not in (".", "")
    if path.is_dir() or local or not is_hub_id(spec):
        return path
    repo_id, revision = parse_spec(spec)
    found = cache_dir(repo_id, revision)
    if not (found / MANIFEST).is_file() and not (found / FOREIGN_MARKER).is_file():
        try:
            found = pull(spec)
        except AdapterxlError as e:
            raise AdapterxlError(f"module directory {spec!r} does not exist, and as a Hub id "
                                 f"it cannot be used: {e}") from e
    if not (found / MANIFEST).is_file():
        raise AdapterxlError(f"{spec} is an adapter in PEFT/adapters format, not an adapterxl "
                             f"module: convert it with `adapterxl import {spec} -o DIR "
                             f"--model BACKBONE` and use DIR")
    return found


def import_module(source, output, registry: str | os.PathLike | None = None,
                  overwrite: bool = False, **options):
    """`adapterxl import`: convert an adapter in PEFT or adapters format into an adapterxl
    module at `output` (see modules.export.import_module for `options`). `source` is a
    folder, or a Hub / registry id `org/name[@revision]`, pulled first."""
    from .modules.export import import_module as convert
    from .modules.store import check_output

    check_output(output, [source], overwrite)  # before a pull: nothing is fetched in vain
    folder = Path(source)
    if not folder.is_dir():
        if not is_hub_id(str(source)):
            raise AdapterxlError(f"adapter directory {str(source)!r} does not exist")
        folder = pull(str(source), registry)
    return convert(folder, output, overwrite=overwrite, origin=str(source), **options)


# ---- the model card -------------------------------------------------------------------------
_TASK_TYPES = {"classification": "text-classification",
               "pair_classification": "text-classification",
               "regression": "text-classification", "tagging": "token-classification",
               "qa": "question-answering", "multiple_choice": "multiple-choice",
               "retrieval": "sentence-similarity", "mlm": "fill-mask"}


def _eval_results(mod) -> list[dict]:
    out = []
    for path in [mod.path / "eval" / "results.json",
                 *sorted((mod.path / "eval").glob("*/results.json"))]:
        if path.is_file():
            try:
                result = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(result, dict) and result.get("per_language"):
                out.append(result)
    return out


def _is_local_backbone(model_id: str) -> bool:
    return model_id.startswith(("builtin:", "/", ".", "~")) or Path(model_id).exists()


def _datasets(data) -> list[str]:
    found = []

    def walk(x):
        if isinstance(x, dict):
            if isinstance(x.get("path"), str) and x.get("split"):
                found.append(x["path"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(data)
    return list(dict.fromkeys(found))


def _numbers(values: dict) -> dict[str, float]:
    return {k: float(v) for k, v in (values or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _hub_dataset(task: str, split: str, lang: str) -> tuple[str, str | None, str]:
    """(Hub dataset id, its config, its split) that `task`'s `split` in `lang` is read from,
    as the catalogue resolves it (udpos German: google/xtreme, udpos.German); the task's own
    name and the language where the task is not on the Hub."""
    from .data.download import hub_spec
    from .tasks import get_task

    try:
        sources = hub_spec(get_task(task), split, lang)["sources"]
    except AdapterxlError:
        return task, lang, split
    first = sources[0]
    return first["path"], first.get("name"), first.get("split", split)


def model_card(module, repo_id: str, license: str | None = None, also: tuple = ()):
    """A `huggingface_hub.ModelCard` for the module: metadata (library_name, base_model,
    licence, tags, languages, datasets, model-index with per-language results on the Hub
    datasets and configs they come from) and a readable body with usage snippets (adapterxl;
    PEFT / adapters when those exports are uploaded beside it, `also`)."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from .modules.store import open_module

    mod = open_module(resolve_module(module)) if not hasattr(module, "manifest") else module
    m = mod.manifest
    backbone = m.backbone["id"]
    tasks = m.all_tasks
    fmt = m.format or "unknown"
    results = _eval_results(mod)
    languages = list(dict.fromkeys(lang for r in results for lang in r["per_language"]))
    languages = languages or [lang for lang in m.languages or [] if lang]
    evals = []
    rows = []  # (task, language, split, {metric: value})
    for r in results:
        for lang, values in r["per_language"].items():
            rows.append((r.get("task", m.task), lang, r.get("split", "test"), _numbers(values)))
    if not rows and (m.metrics or {}).get("dev") and len(tasks) == 1:
        dev = _numbers(m.metrics["dev"])
        if dev:
            rows.append((m.task, (m.languages or ["en"])[0], "validation", dev))
    datasets = _datasets(m.data)
    for task, lang, split, values in rows:
        dataset, config, hub_split = _hub_dataset(task, split, lang)
        for metric, value in values.items():
            evals.append(EvalResult(
                task_type=_TASK_TYPES.get(fmt, "other"), task_name=task,
                dataset_type=dataset, dataset_name=f"{task} ({lang})", dataset_config=config,
                dataset_split=hub_split, metric_type=metric, metric_value=round(value, 6)))
    engine = m.method.engine or ""
    tags = list(dict.fromkeys(["adapterxl", m.method.name, *tasks, engine,
                               *(["language-module"] if m.role == "language" else [])]))
    data = ModelCardData(
        # Not "peft": adapterxl's own files are the module (`hub list` finds modules by this
        # name); the PEFT export, when uploaded, is in peft/ and the body shows how to load it.
        library_name="adapterxl", license=license or "unknown",
        base_model=None if _is_local_backbone(backbone) else backbone,
        tags=[t for t in tags if t and t != "unknown"],
        language=languages or None, datasets=datasets or None,
        model_name=repo_id.split("/")[-1] if evals else None,
        eval_results=evals or None,
        adapterxl={"task": m.task, "method": m.method.name, "engine": engine,
                   "role": m.role, "kind": m.kind,
                   "backbone": backbone, "fingerprint": m.backbone.get("fingerprint")},
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{_card_body(mod, repo_id, rows, also)}")


def _card_body(mod, repo_id: str, rows, also: tuple = ()) -> str:
    m = mod.manifest
    backbone = m.backbone["id"]
    language = m.role == "language"
    what = ("language module (MAD-X)" if language
            else "fusion" if m.kind == "fusion" else "module")
    lines = [f"# {repo_id}", "",
             f"An adapterxl {what} for "
             f"**{m.task}** on the frozen backbone `{backbone}`: method `{m.method.name}` "
             f"(built with the `{m.method.engine or '?'}` library). The backbone's weights "
             f"are not included; adapterxl refuses to use the module on other weights "
             f"(fingerprint `{m.backbone.get('fingerprint')}`).", ""]
    lower = m.stack
    if lower:
        lines += ["Stacked on (bottom first; full copies are included in `stack/`):", ""]
        lines += [f"- `{e['name']}` ({e.get('task')}, {e.get('method')})" for e in lower]
        lines.append("")
    if m.fused:
        lines += ["Fuses: " + ", ".join(f"`{e['name']}`" for e in m.fused), ""]
    model = backbone
    lines += ["## Use it", "", "```bash"]
    if language:
        lines.append(f"adapterxl train-target --task xnli --model {model} "
                     f"--lang-module {repo_id} -o runs/xnli")
    else:
        lines.append(f"adapterxl train-target --task xnli --model {model} --stack {repo_id} "
                     f"-o runs/xnli")
        if m.task != "unknown":
            lines.append(f"adapterxl evaluate --task {m.task} --module {repo_id} "
                         f"--languages all")
    lines += ["```", "", f"(`adapterxl pull {repo_id}` downloads and verifies it first; any "
              f"place that takes a module directory also takes `{repo_id}`.)", ""]
    if not language and m.head is not None:
        lines += ["From Python:", "", "```python", "import adapterxl", "",
                  f"adapterxl.predict({repo_id!r}, [\"Ein Beispielsatz.\"], language=\"de\")",
                  "```", ""]
    lines += _foreign_usage(backbone, repo_id, also)
    lines += [
              "## Training configuration", "", "```json",
              json.dumps({"method": m.method.to_json(), "hyperparameters": m.hyperparameters,
                          "data": m.data, "seed": m.seed, "versions": m.versions},
                         indent=2, ensure_ascii=False),
              "```", ""]
    if rows:
        metrics = list(dict.fromkeys(k for *_, values in rows for k in values))
        lines += ["## Results", "", "| task | language | split | " + " | ".join(metrics) + " |",
                  "|---|---|---|" + "---|" * len(metrics)]
        for task, lang, split, values in rows:
            cells = [f"{values[k]:.4f}" if k in values else "" for k in metrics]
            lines.append(f"| {task} | {lang} | {split} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _foreign_usage(backbone: str, repo_id: str, also: tuple) -> list[str]:
    """How to load the exports uploaded beside the module without adapterxl."""
    lines = []
    if "peft" in also:
        lines += ["Without adapterxl, with PEFT (the adapter only; the task head is in "
                  "`peft/head.safetensors`, described by `peft/head_config.json`):", "",
                  "```python", "from peft import PeftModel", "from transformers import AutoModel",
                  "", f"base = AutoModel.from_pretrained({backbone!r})",
                  f"model = PeftModel.from_pretrained(base, {repo_id!r}, subfolder=\"peft\")",
                  "```", ""]
    if "adapters" in also:
        lines += ["Without adapterxl, with the `adapters` library (head as above, in "
                  "`adapters/`):", "",
                  "```python", "import adapters", "from huggingface_hub import snapshot_download",
                  "from transformers import AutoModel", "",
                  f"model = AutoModel.from_pretrained({backbone!r})", "adapters.init(model)",
                  f"path = snapshot_download({repo_id!r}, allow_patterns=[\"adapters/*\"])",
                  "name = model.load_adapter(path + \"/adapters\")",
                  "model.set_active_adapters(name)", "```", ""]
    return lines


# ---- push -----------------------------------------------------------------------------------
ALSO = ("peft", "adapters")


def _stage_upload(mod, repo_id: str, license: str | None = None, also: tuple = ()) -> Path:
    """A temporary folder with what gets published: the pull patterns' files, the card, and
    each format of `also` exported into its own subfolder (peft/, adapters/)."""
    from .modules.export import export_module

    staged = Path(tempfile.mkdtemp(prefix="adapterxl-push-"))
    try:
        _copy_matching(mod.path, staged, [p for p in PULL_PATTERNS if p != "README.md"],
                       f"module {mod.path}")
        for fmt in also:
            try:
                export_module(mod.path, fmt, staged / fmt)
            except AdapterxlError as e:
                raise AdapterxlError(f"--also {fmt}: {e}") from e
        model_card(mod, repo_id, license=license, also=also).save(staged / "README.md")
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return staged


def push(module, repo: str, private: bool = False, revision: str | None = None,
         registry: str | os.PathLike | None = None, license: str | None = None,
         also=()) -> str:
    """Publish a module (weights, manifest, lower/fused copies, evaluation results, a model
    card) as `repo` (org/name) at `revision` (a branch; main by default). `license` is the
    card's licence id (default "unknown"); `also` ("peft", "adapters") uploads those exports
    in subfolders, for people without adapterxl. Returns where it went (a URL or a registry
    folder). The local module is only read; a failed upload says how to retry."""
    from .modules.store import open_module

    repo_id, default_revision = parse_spec(repo)
    revision = revision or default_revision
    if not is_hub_id(f"{repo_id}@{revision}"):
        raise AdapterxlError(f"{revision!r} is not a valid revision (branch) name")
    mod = open_module(resolve_module(module))
    mod.verify(deep=True)  # never publish a corrupted module
    where = _where(repo_id, revision)
    retry = (f"the local module {mod.path} is unchanged; retry with `adapterxl push {mod.path} "
             f"--repo {repo_id}" + (f" --revision {revision}" if revision != DEFAULT_REVISION
                                    else "") + "`")
    also = tuple(dict.fromkeys(also or ()))
    for fmt in also:
        if fmt not in ALSO:
            from .errors import unknown
            raise unknown("--also format", fmt, ALSO)
    staged = _stage_upload(mod, repo_id, license, also)
    try:
        source = registry_location(registry)
        if source != "hf":
            target = _registry_dir(source, repo_id, revision)
            try:
                with _io.staged(target) as tmp:
                    shutil.copytree(staged, tmp, dirs_exist_ok=True)
            except OSError as e:
                raise AdapterxlError(f"cannot push {where} to the registry {source}: "
                                     f"{e.strerror or e}; {retry}") from e
            return str(target)
        import huggingface_hub

        from .connectivity import hub_unreachable

        why = hub_unreachable()
        if why:
            raise AdapterxlError(f"cannot push {where}: the Hugging Face Hub is unreachable "
                                 f"({why}); {retry}")
        token = _token()
        if token is None:
            raise AdapterxlError(f"cannot push {where}: not logged in to the Hugging Face Hub "
                                 f"(set HF_TOKEN or run `hf auth login`); {retry}")
        try:
            api = huggingface_hub.HfApi(token=token)
            url = api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
            if revision != DEFAULT_REVISION:
                api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
            api.upload_folder(repo_id=repo_id, folder_path=str(staged), repo_type="model",
                              revision=revision,
                              commit_message=f"adapterxl push {mod.name} ({mod.method})")
        except _hub_errors() as e:
            message = _first_line(e).replace(token, "***")
            raise AdapterxlError(f"push to {where} failed ({message}); {retry}") from e
        return f"{str(url).rstrip('/')}" + (f"/tree/{revision}" if revision != DEFAULT_REVISION
                                            else "")
    finally:
        shutil.rmtree(staged, ignore_errors=True)


# ---- finding modules ------------------------------------------------------------------------
def _backbone_matches(have: str | None, want: str | None) -> bool:
    if not want:
        return True
    if not have:
        return False
    return have == want or have.split("/")[-1] == want.split("/")[-1]


def list_modules(task: str | None = None, backbone: str | None = None,
                 registry: str | os.PathLike | None = None) -> list[dict]:
    """Modules available for `task` / on `backbone`: [{id, task, method, backbone, role,
    languages, format}] from the Hub (library adapterxl) or a registry's manifests."""
    source = registry_location(registry)
    if source == "hf":
        return _list_hub(task, backbone)
    out = []
    if not Path(source).is_dir():
        raise AdapterxlError(f"registry {source} does not exist")
    for config in sorted(Path(source).glob("*/*/*/*.json")):
        if config.name not in ("manifest.json", FOREIGN_MARKER) or config.is_symlink():
            continue
        if config.name == FOREIGN_MARKER and (config.parent / "manifest.json").exists():
            continue
        rev = config.parent.name
        repo_id = f"{config.parent.parent.parent.name}/{config.parent.parent.name}"
        spec = repo_id if rev == DEFAULT_REVISION else f"{repo_id}@{rev.replace('--', '/')}"
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            continue
        if config.name == "manifest.json":
            row = {"id": spec, "task": data.get("task"),
                   "method": (data.get("method") or {}).get("name"),
                   "backbone": (data.get("backbone") or {}).get("id"),
                   "role": data.get("role", "task"),
                   "languages": _card_languages(config.parent) or data.get("languages") or [],
                   "format": "adapterxl"}
        else:
            fmt = "peft" if "peft_type" in data else "adapters"
            row = {"id": spec, "task": "unknown",
                   "method": data.get("peft_type") or (data.get("config") or {}).get(
                       "architecture") or "bottleneck",
                   "backbone": data.get("base_model_name_or_path") or data.get("model_name"),
                   "role": "?", "languages": [], "format": fmt}
        tasks = (data.get("tasks") or [row["task"]]) if config.name == "manifest.json" \
            else [row["task"]]
        if task and task not in tasks:
            continue
        if not _backbone_matches(row["backbone"], backbone):
            continue
        out.append(row)
    return out


def _card_languages(folder: Path) -> list[str]:
    """The languages a module's model card lists (those it was evaluated in), as the Hub shows
    them; the manifest's own `languages` are only the training language(s)."""
    import huggingface_hub

    card = folder / "README.md"
    if not card.is_file():
        return []
    try:
        langs = (huggingface_hub.metadata_load(card) or {}).get("language") or []
    except (OSError, ValueError, UnicodeDecodeError):
        return []
    return [langs] if isinstance(langs, str) else [str(x) for x in langs]


def _list_hub(task: str | None, backbone: str | None) -> list[dict]:
    import huggingface_hub

    from .connectivity import hub_unreachable

    why = hub_unreachable()
    if why:
        raise AdapterxlError(f"cannot list modules: the Hugging Face Hub is unreachable "
                             f"({why}); a local registry works offline (--registry DIR)")
    try:
        api = huggingface_hub.HfApi(token=_token())
        models = list(api.list_models(library="adapterxl", filter=[task] if task else None,
                                      cardData=True, limit=1000))
    except _hub_errors() as e:
        raise AdapterxlError(f"cannot list modules on the Hugging Face Hub "
                             f"({_first_line(e)})") from e
    out = []
    for info in models:
        card = getattr(info, "card_data", None) or getattr(info, "cardData", None) or {}
        card = card.to_dict() if hasattr(card, "to_dict") else dict(card)
        meta = card.get("adapterxl") or {}
        base = meta.get("backbone") or card.get("base_model")
        if not _backbone_matches(base if isinstance(base, str) else None, backbone):
            continue
        langs = card.get("language") or []
        out.append({"id": info.id, "task": meta.get("task"), "method": meta.get("method"),
                    "backbone": base, "role": meta.get("role"),
                    "languages": [langs] if isinstance(langs, str) else list(langs),
                    "format": "adapterxl"})
    return out
