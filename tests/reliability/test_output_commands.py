"""merge, export and import write new folders from modules they read: like training, they
never write onto (or inside) what they read, never hide an existing file, and replace an
existing module or export only with --overwrite (issue 16, "outputs never clobber inputs")."""
from pathlib import Path

import pytest

from conftest import cli, fails, quick


def tree(path):
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(Path(path).rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    return [quick("mnli", root / name, max_steps=1, method="lora", seed=seed)["module"]
            for name, seed in (("a", 1), ("b", 2))]


@pytest.fixture(scope="module")
def exported(two, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "peft"
    assert cli("export", two[0], "--format", "peft", "-o", out).exit_code == 0
    return out


def test_merge_output_never_clobbers(two, tmp_path):
    a, b = map(Path, two)
    before = {m: tree(m) for m in (a, b)}
    merge = ["merge", "--merge", f"{a},{b}"]
    fails(*merge, "-o", a, match="would overwrite the module")
    fails(*merge, "-o", b / "inner", match="would overwrite the module")
    note = tmp_path / "notes.txt"
    note.write_text("keep")
    fails(*merge, "-o", note, match="not a directory")
    fails(*merge, "-o", "", match="empty")
    assert {m: tree(m) for m in (a, b)} == before and note.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing staged
    # a module already there needs --overwrite, and is replaced with it
    assert cli(*merge, "-o", tmp_path / "m").exit_code == 0
    fails(*merge, "-o", tmp_path / "m", match="--overwrite")
    assert cli(*merge, "-o", tmp_path / "m", "--overwrite").exit_code == 0


def test_export_output_never_clobbers(two, tmp_path):
    a, b = map(Path, two)
    before = {m: tree(m) for m in (a, b)}
    export = ["export", a, "--format", "peft"]
    fails(*export, "-o", a, match="would overwrite the module")
    fails(*export, "-o", b, match="not a module")  # another module is not an export
    note = tmp_path / "notes.txt"
    note.write_text("keep")
    fails(*export, "-o", note, match="not a directory")
    assert {m: tree(m) for m in (a, b)} == before and note.read_text() == "keep"
    assert cli(*export, "-o", tmp_path / "x").exit_code == 0
    fails(*export, "-o", tmp_path / "x", match="--overwrite")
    assert cli(*export, "-o", tmp_path / "x", "--overwrite").exit_code == 0


def test_import_output_never_clobbers(two, exported, tmp_path):
    a = Path(two[0])
    before = {p: tree(p) for p in (a, exported)}
    imp = ["import", exported, "--model", "builtin:tiny-xlmr"]
    fails(*imp, "-o", exported, match="would overwrite the module")
    fails(*imp, "-o", exported / "sub", match="would overwrite the module")
    fails(*imp, "-o", a, match="--overwrite")
    note = tmp_path / "notes.txt"
    note.write_text("keep")
    fails(*imp, "-o", note, match="not a directory")
    assert {p: tree(p) for p in (a, exported)} == before and note.read_text() == "keep"
