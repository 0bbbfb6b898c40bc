"""What a new user tripped over (issue 18, part 8), each checked the way the user met it."""
import importlib.metadata
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
