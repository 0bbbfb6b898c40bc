"""Atomic writes: a crash or kill mid-write leaves the previous file or directory intact."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import AdapterxlError


class WriteError(AdapterxlError, OSError):
    """A write that failed in the user's environment (disk full, no permission): an
    AdapterxlError so the CLI prints one line with exit code 2, and still an OSError (with the
    original errno) for callers that catch those."""

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno


def write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, AdapterxlError):
            # One line for the CLI; the previous file at `path` is untouched.
            raise WriteError(f"cannot write {path}: {e.strerror or e}", e.errno) from e
        raise


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: Path):
    """A JSON file's content; a file that is not JSON is one clear error naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise AdapterxlError(f"{path} is not valid JSON ({e})") from e


@contextlib.contextmanager
def staged(target: Path):
    """Build a directory beside `target` and swap it in when the block succeeds; on any
    failure the half-built one is removed and `target` is left as it was."""
    tmp = staging_dir(target)
    try:
        yield tmp
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def staging_dir(target: Path) -> Path:
    """A fresh directory beside `target` to build it in; publish it with replace_dir."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))


def replace_dir(staged: Path, target: Path) -> None:
    """Swap a fully written directory into place; the old one goes only after the swap."""
    target = Path(target)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rmdir(old)
        os.replace(target, old)
    try:
        os.replace(staged, target)
    except BaseException:
        if old is not None:  # put the previous directory back: a failed swap must lose nothing
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_leftovers(target: Path, echo=print) -> list[Path]:
    """Remove what killed writers of `target` left beside it: staging directories
    (`.<name>.tmp-*`, `.<name>.old-*`), a checkpoint's temporary files and broken locks. Call
    it only while holding `target`'s lock, so that none of these is another writer's."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    patterns = [f".{target.name}.tmp-*", f".{target.name}.old-*", f"{target.name}.lock.stale-*"]
    found = {p for pattern in patterns for p in target.parent.glob(pattern)}
    checkpoint = target.with_name(target.name + ".checkpoint")
    if checkpoint.is_dir():
        found |= set(checkpoint.glob(".checkpoint.*"))
    for path in sorted(found):
        echo(f"removing {path}, left by an interrupted run")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return sorted(found)
