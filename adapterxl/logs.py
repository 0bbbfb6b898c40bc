"""What adapterxl tells its user while it works: the `adapterxl` logger, its warnings, and the
progress bars.

As a library adapterxl only logs (to `logging.getLogger("adapterxl")`, silent unless the
application configures logging) and warns (`warnings.warn` with `AdapterxlWarning`). The CLI
calls `setup`: messages on stderr through tqdm (so that progress bars stay intact), warnings as
`warning: ...` lines, `-q` keeps warnings and errors only and hides progress bars, `-v` shows
debug messages and the Hugging Face libraries' own info, and `--log-file` keeps everything,
timestamped, including the traceback of an error."""
from __future__ import annotations

import contextlib
import logging
import warnings

logger = logging.getLogger("adapterxl")
logger.addHandler(logging.NullHandler())

_progress = True


class AdapterxlWarning(UserWarning):
    """Something the user should know that does not stop the run (e.g. an intermediate task
    whose data is the target's English training data)."""


# Every time, not once per place in the code: a notebook that trains twice on mnli before
# xnli should hear about it twice.
warnings.filterwarnings("always", category=AdapterxlWarning)


def warn(message: str) -> None:
    warnings.warn(message, AdapterxlWarning, stacklevel=3)


def progress_enabled() -> bool:
    """False under `-q`: no progress bars."""
    return _progress


def progress(iterable=None, **kwargs):
    """A tqdm bar that is off under `-q` and when stderr is not a terminal."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", None if _progress else True)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)


@contextlib.contextmanager
def hf_quiet():
    """transformers says nothing while adapterxl loads, builds or saves a backbone: no info or
    warnings (the CLI shows those under -v) and none of transformers 5's per-tensor "Loading
    weights" / "Writing model shards" bars, which would otherwise precede every table and
    one-line error. The Hub's download bars stay as they were: a download can take minutes."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, \
        enable_progress_bars
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hub_bars = not are_progress_bars_disabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # turns the Hub's off as well
    if hub_bars:
        enable_progress_bars()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()
        if not hub_bars:
            disable_progress_bars()


class _Console(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "file_only", False):
            return
        from tqdm.auto import tqdm

        text = record.getMessage()
        if record.levelno >= logging.WARNING and not text.startswith(("warning:", "error:")):
            text = f"{record.levelname.lower()}: {text}"
        try:
            tqdm.write(text, file=__import__("sys").stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def setup(verbosity: int = 0, log_file: str | None = None) -> None:
    """Configure the CLI's output: verbosity -1 (quiet), 0 (default) or 1+ (verbose)."""
    global _progress

    _progress = verbosity >= 0
    level = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_adapterxl", False):
            root.removeHandler(handler)
    console = _Console(level)
    console._adapterxl = True
    root.addHandler(console)
    root.setLevel(logging.DEBUG if log_file else level)
    if log_file:
        file = logging.FileHandler(log_file, encoding="utf-8")
        file.setLevel(logging.DEBUG)
        file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        file._adapterxl = True
        root.addHandler(file)
    # Other libraries speak only when asked (-v), and never below INFO.
    for name in ("transformers", "datasets", "huggingface_hub", "accelerate", "peft",
                 "adapters", "bitsandbytes", "urllib3", "filelock", "fsspec", "matplotlib",
                 "PIL"):
        logging.getLogger(name).setLevel(logging.INFO if verbosity > 0 else logging.ERROR)
    logger.setLevel(logging.DEBUG)

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, AdapterxlWarning) or verbosity > 0:
            logging.getLogger("adapterxl").warning(str(message))
        else:  # other libraries' deprecation chatter: kept in the log file only
            logging.getLogger("py.warnings").debug(
                f"{category.__name__}: {message} ({filename}:{lineno})")
    warnings.showwarning = show


def log_error(message: str, exc: BaseException | None = None) -> None:
    """The CLI's final error line (already printed) with its traceback, for the log file."""
    logger.error(message, exc_info=exc, extra={"file_only": True})
