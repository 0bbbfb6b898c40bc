"""What a new user tripped over (issue 18, part 8), each checked the way the user met it."""
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import cli, fails

ROOT = Path(__file__).resolve().parent.parent

# What pip writes as bin/adapterxl for `[project.scripts] adapterxl = "adapterxl.cli:main"`.
CONSOLE_SCRIPT = """# -*- coding: utf-8 -*-
import re
import sys
from adapterxl.cli import main
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(main())
"""


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    return env


def test_typology_through_the_console_script(tmp_path):
    """lang2vec installs bin/lang2vec.py next to bin/adapterxl; a console script runs with
    sys.path[0] = bin/, where an import lookup of `lang2vec` finds that script. Building a venv
    and installing adapterxl into it takes minutes here, so the test lays out the same bin/:
    the console script pip generates beside the lang2vec script the package really installed,
    and runs it as the shell would (python bin/adapterxl)."""
    try:
        dist = importlib.metadata.distribution("lang2vec")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("lang2vec is not installed (the [typology] extra)")
    script = next((f for f in dist.files or [] if f.name == "lang2vec.py"
                   and f.parent.name in ("bin", "Scripts")), None)
    if script is None:
        pytest.skip("this lang2vec install has no bin/lang2vec.py script")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "lang2vec.py").write_text(Path(dist.locate_file(script)).read_text())
    (bin_dir / "adapterxl").write_text(CONSOLE_SCRIPT)
    run = subprocess.run([sys.executable, str(bin_dir / "adapterxl"), "analyze", "typology",
                          "--languages", "sw,yo,de,en", "--k", "2"],
                         capture_output=True, text=True, env=_env(), timeout=300)
    assert run.returncode == 0, run.stderr
    assert "diverse subset (k=2" in run.stdout


def _adapterxl(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-c", "from adapterxl.cli import main; main()",
                           *map(str, args)], capture_output=True, text=True,
                          env=env or _env(), timeout=300, **kw)


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_unreachable_hub_is_one_line_at_once_with_the_offline_hint(tmp_path):
    env = _env(HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
               ADAPTERXL_HOME=str(tmp_path / "home"))
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(var, None)
    for args, what in [(("train-intermediate", "--task", "mnli", "--model", "acme/no-such-model",
                         "--data", "samples", "-o", tmp_path / "m"), "cannot load backbone"),
                       (("pull", "acme/no-such-module"), "cannot pull")]:
        run = _adapterxl(*args, env=env)
        assert run.returncode == 2, run.stderr
        # no retry noise from the Hub client: the probe answered before any request
        assert run.stderr.count("\n") == 1 and "Retrying" not in run.stderr, run.stderr
        assert what in run.stderr and "HF_HUB_OFFLINE=1" in run.stderr


def test_broken_pipe_is_quiet():
    proc = subprocess.Popen([sys.executable, "-c", "from adapterxl.cli import main; main()",
                             "tasks", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env())
    proc.stdout.close()  # the reader leaves before anything is written, like `| head`
    err = proc.stderr.read().decode()
    proc.wait(timeout=300)
    assert err == "" and proc.returncode == 141, err


def test_version_and_help():
    import adapterxl

    out = cli("--version").output
    assert out.strip() == f"adapterxl, version {adapterxl.__version__}"
    help_ = cli("evaluate", "--help").output
    for flag in ("--data", "--split", "--force", "--data-dir"):
        line = help_.split(flag, 1)[1].split("\n  -", 1)[0]
        assert len(line.split()) > 2, (flag, line)  # documented, not a bare flag
    assert "conllu" in help_
    language = cli("train-language", "--help").output
    assert "the task's" not in language and "[default: 1]" in language


def test_mistyped_local_module_is_not_a_hub_id(mnli_module, tmp_path):
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(mnli_module, runs / "mnli")
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        line = fails("evaluate", "--task", "xnli", "--module", "runs/mnlii", "--data", "samples",
                     match="module directory 'runs/mnlii' does not exist")
    finally:
        os.chdir(old)
    assert "did you mean 'runs/mnli'" in line and "pull" not in line


def test_hub_list_shows_the_cards_languages(source_with_results, tmp_path):
    registry = tmp_path / "registry"
    assert cli("push", source_with_results, "--repo", "acme/mnli",
               "--registry", registry).exit_code == 0
    rows = json.loads(cli("hub", "list", "--registry", registry, "--json").stdout)
    assert rows[0]["languages"] == ["en", "de", "sw"]


def test_evaluate_defaults_to_the_modules_own_data(mnli_module, tmp_path):
    """The module was trained on the bundled samples: evaluating it without --data reads the
    samples too, not the Hub (offline in tests: it would fail)."""
    import shutil

    shutil.copytree(mnli_module, tmp_path / "mnli")
    run = cli("evaluate", "--task", "xnli", "--module", tmp_path / "mnli", "--languages",
              "en,de", "--max-examples", "8")
    assert run.exit_code == 0, run.output
    result = json.loads((tmp_path / "mnli" / "eval" / "results.json").read_text())
    assert result["data"] == {"source": "samples"} and set(result["per_language"]) == {"en", "de"}


def test_default_source_of_a_local_module(tmp_path):
    from adapterxl.evaluation import default_source
    from adapterxl.modules.store import ModuleDir

    (tmp_path / "data").mkdir()
    mod = ModuleDir(tmp_path, {"task": "xnli", "data": {"source": "local",
                                                        "dir": str(tmp_path / "data")}})
    assert default_source(mod, "xnli") == ("hf", str(tmp_path / "data"))
    assert default_source(mod, "bucc2018") == ("hf", None)  # its folder holds xnli only
    hub = ModuleDir(tmp_path, {"task": "mnli", "data": {"source": "hf"}})
    assert default_source(hub, "xnli") == ("hf", None)


@pytest.fixture
def source_with_results(mnli_module, tmp_path):
    import shutil

    path = tmp_path / "src" / "mnli"
    shutil.copytree(mnli_module, path)
    results = {"task": "xnli", "split": "test", "metric": "accuracy",
               "per_language": {"en": {"accuracy": 0.81}, "de": {"accuracy": 0.42},
                                "sw": {"accuracy": 0.35}}}
    (path / "eval").mkdir()
    (path / "eval" / "results.json").write_text(json.dumps(results))
    return path
