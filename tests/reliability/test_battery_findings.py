"""Bad inputs that benchmarks/bad_input_battery.py found accepted or mishandled, one test
per class (issue 16): each is refused with one `error:` line and exit 2."""
from conftest import fails


def test_plan_refuses_a_head_without_labels():
    fails("plan", "--model", "builtin:tiny-xlmr", "--labels", "0", match="--labels")


def test_a_manifest_that_is_not_an_object(mnli_lora, tmp_path):
    import shutil

    for text, found in (("[1, 2]", "list"), ('"module"', "str"), ("null", "NoneType")):
        mod = tmp_path / found
        shutil.copytree(mnli_lora, mod)
        (mod / "manifest.json").write_text(text)
        fails("inspect", mod, match="expected a JSON object", also=[found])


def test_a_module_file_that_is_a_directory(mnli_lora, tmp_path):
    import shutil

    for name in ("head.safetensors", "module.safetensors"):
        mod = tmp_path / name
        shutil.copytree(mnli_lora, mod)
        (mod / name).unlink()
        (mod / name).mkdir()
        # evaluate opens both files (before: an unexpected IsADirectoryError for the head)
        fails("evaluate", "--task", "xnli", "--module", mod, "--data", "samples",
              "--languages", "de", "--max-examples", "4", "--bootstrap", "0",
              "-o", tmp_path / "eval", match="is a directory", also=[name])
