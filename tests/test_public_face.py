"""The package's public face (adapterxl/__init__.py): `import adapterxl` stays torch-free and
every name in `__all__` resolves to what it says (a function, a class or the version), not to a
submodule of the same name."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str) -> str:
    # a fresh interpreter: in this one other tests have imported torch and the submodules
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_import_adapterxl_does_not_import_torch():
    out = _run("import sys, adapterxl; print([m for m in ('torch', 'transformers') "
               "if m in sys.modules])")
    assert out.strip() == "[]"


def test_help_does_not_import_torch():
    out = _run("import sys\nfrom adapterxl.cli import main\ntry:\n    main(['--help'])\n"
               "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    assert "train-intermediate" in out and out.strip().endswith("False")


def test_every_public_name_resolves():
    out = _run("import json, types, adapterxl\n"
               "found = {name: getattr(adapterxl, name) for name in adapterxl.__all__}\n"
               "print(json.dumps({name: [type(obj).__name__, isinstance(obj, types.ModuleType)] "
               "for name, obj in found.items()}))")
    found = json.loads(out)
    import adapterxl

    assert set(found) == set(adapterxl.__all__) == set(dir(adapterxl))
    assert {"train", "evaluate", "predict", "open_module", "run_recipe", "plan", "TrainConfig",
            "__version__"} <= set(found)
    assert not [name for name, (_, is_module) in found.items() if is_module]
    assert found["__version__"][0] == "str" and found["TrainConfig"][0] == "type"
    for name in ("train", "evaluate", "predict", "open_module", "run_recipe", "plan"):
        assert found[name][0] == "function", (name, found[name])


def test_an_unknown_name_is_an_attribute_error():
    import adapterxl
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        adapterxl.nothing
