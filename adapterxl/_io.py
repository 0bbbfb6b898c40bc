"""Atomic writes: a crash or kill mid-write leaves the previous file or directory intact."""
from __future__ import annotations

import contextlib
import errno as errnos
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


# Errors of the environment while writing: what they mean and what to do.
_ADVICE = {
    errnos.ENOSPC: "free space on that disk or write elsewhere, then rerun",
    errnos.EDQUOT: "free space within your quota or write elsewhere, then rerun",
    errnos.EROFS: "the file system is read-only: write elsewhere",
    errnos.EACCES: "no permission to write there: write elsewhere or fix the permissions",
    errnos.EPERM: "not permitted there: write elsewhere or fix the permissions",
    errnos.EFBIG: "the file is too large for that file system: write elsewhere",
}
# How safetensors and torch's zip writer word the same failures (they raise their own types).
_WORDS = {"no space left": errnos.ENOSPC, "quota": errnos.EDQUOT,
          "read-only file system": errnos.EROFS, "permission denied": errnos.EACCES}


def write_failure(e: BaseException, path=None) -> tuple[int, str] | None:
    """(errno, advice) when `e` is a write that failed because of the environment (a full
    disk, a read-only or forbidden place), else None. Besides OSError this recognises
    safetensors' SafetensorError and torch's zip-writer RuntimeError, which carry no errno."""
    if isinstance(e, WriteError):
        return None  # already explained
    code = getattr(e, "errno", None) if isinstance(e, OSError) else None
    if code is None and type(e).__name__ in ("SafetensorError", "RuntimeError", "OSError"):
        text = str(e).lower()
        code = next((c for w, c in _WORDS.items() if w in text), None)
        if code is None and ("unexpected pos" in text or "write failed" in text) \
                and path is not None and free_bytes(path) < (1 << 20):
            code = errnos.ENOSPC  # the zip writer only says it could not write
    if code not in _ADVICE:
        return None
    return code, _ADVICE[code]


def free_bytes(path) -> int:
    """Free bytes on the file system holding `path` (or its nearest existing parent)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0


def as_write_error(e: BaseException, what: str, path, kept: str = "") -> WriteError | None:
    """A WriteError 'cannot <what>: <cause>[ (N KB free)][; <kept>]; <advice>' for an
    environment write failure, else None."""
    failure = write_failure(e, path)
    if failure is None:
        return None
    code, advice = failure
    free = (f" ({free_bytes(path) // 1024} KB free)"
            if code in (errnos.ENOSPC, errnos.EDQUOT) and path is not None else "")
    return WriteError(f"cannot {what}: {os.strerror(code)}{free}"
                      + (f"; {kept}" if kept else "") + f"; {advice}", code)


def write_text(path: Path, text: str) -> None:
    path = Path(path)
    tmp = None
    # Folders this call creates go again if it fails: a failed write leaves nothing behind.
    missing = [p for p in path.parents if not p.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        for folder in missing:  # nearest first; one that is not empty (or gone) stops it
            try:
                folder.rmdir()
            except OSError:
                break
        error = as_write_error(e, f"write {path}", path)
        if error is not None:
            # One line for the CLI; the previous file at `path` is untouched.
            raise error from e
        if isinstance(e, OSError) and not isinstance(e, AdapterxlError):
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
    try:
        tmp = staging_dir(target)
    except OSError as e:
        raise (as_write_error(e, f"write {target}", target, "nothing was changed") or e) from e
    try:
        yield tmp
        replace_dir(tmp, target)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        error = as_write_error(e, f"write {target}", target, "nothing was changed")
        if error is not None:
            raise error from e
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
