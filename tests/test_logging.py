"""-v / -q / --log-file, warnings as `warning:` lines, and shell completion of task and method
names."""
import logging
import warnings

from click.shell_completion import ShellComplete

from adapterxl.cli import main
from conftest import cli


def _complete(*words, incomplete):
    comp = ShellComplete(main, {}, "adapterxl", "_ADAPTERXL_COMPLETE")
    return [c.value for c in comp.get_completions(list(words), incomplete)]


def test_completion_of_tasks_and_methods():
    assert "mnli" in _complete("train-intermediate", "--task", incomplete="mn")
    assert _complete("train-target", "--task", incomplete="mnli,squad_") == ["mnli,squad_v2"]
    assert set(_complete("train-intermediate", "--method", incomplete="lo")) == {"lora"}
    assert "xnli" in _complete("evaluate", "--task", incomplete="xn")


def test_log_file_keeps_the_error_with_its_traceback(tmp_path):
    log = tmp_path / "run.log"
    run = cli("--log-file", log, "evaluate", "--task", "xnli", "--module", tmp_path / "missing")
    assert run.exit_code == 2
    assert run.stderr.strip().splitlines() == [
        f"error: module directory '{tmp_path / 'missing'}' does not exist"]
    text = log.read_text()
    assert "ERROR adapterxl: error: module directory" in text and "Traceback" in text
    assert text[:4].isdigit()  # timestamped


def test_quiet_and_verbose(tmp_path, mnli_module):
    import shutil

    mod = tmp_path / "mnli"
    shutil.copytree(mnli_module, mod)
    args = ("train-target", "--task", "xnli", "--model", "builtin:tiny-xlmr", "--data",
            "samples", "--stack", mod, "--max-steps", "2", "--batch-size", "4",
            "--max-length", "32", "--max-train-examples", "16")
    # mnli is xnli's English training data: a warning, shown even with -q
    run = cli("-q", *args, "-o", tmp_path / "q")
    assert run.exit_code == 0, run.output
    assert run.stderr.strip().splitlines()[0].startswith("warning: ") and "mnli" in run.stderr
    assert cli("-v", "-q", "tasks").exit_code == 2
    with warnings.catch_warnings():  # pytest's own capture would count it as seen already
        warnings.simplefilter("always")
        run = cli("-v", "--log-file", tmp_path / "v.log", *args, "-o", tmp_path / "v")
    assert run.exit_code == 0, run.output
    assert "WARNING adapterxl: " in (tmp_path / "v.log").read_text()
    logging.getLogger().handlers[:] = [h for h in logging.getLogger().handlers
                                       if not getattr(h, "_adapterxl", False)]
