"""Lock files that cannot hang.

A lock is a small JSON file created atomically with its content (written beside it, then
hard-linked into place, so no reader sees it empty): host, PID, and the process's start time
(field 22 of /proc/<pid>/stat), because PIDs are reused. On the same host a lock is stale when
its process is gone or a different process now has its PID; on another host when it was not
touched for `stale_after` seconds; a lock whose content cannot be read is stale once it is a
few seconds old. Every wait has a timeout whose message names the lock file.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path

from .errors import AdapterxlError

UNREADABLE_GRACE = 5.0  # seconds an unreadable lock is left alone (written by other means)


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None where /proc is absent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])  # field 22 overall


def owner() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": start_time(pid),
            "time": time.time()}


def read(lock: Path) -> dict:
    try:
        info = json.loads(Path(lock).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def mine(lock: Path) -> bool:
    """Whether this very process holds the lock."""
    info, me = read(lock), owner()
    return (info.get("host") == me["host"] and info.get("pid") == me["pid"]
            and info.get("start") == me["start"])


def holder(lock: Path) -> str:
    info = read(lock)
    if not info:
        return "unknown holder"
    return f"pid {info.get('pid')} on {info.get('host')}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale(lock: Path, stale_after: float) -> str | None:
    """Why the lock is stale, or None while its holder may still be working."""
    try:
        age = time.time() - Path(lock).stat().st_mtime
    except FileNotFoundError:
        return None
    info = read(lock)
    pid = info.get("pid")
    if not info or not isinstance(pid, int) or isinstance(pid, bool):
        return f"unreadable content, {age:.0f} s old" if age > UNREADABLE_GRACE else None
    if info.get("host") == socket.gethostname():
        if not _alive(pid):
            return f"process {pid} on this host is gone"
        started = start_time(pid)
        if info.get("start") is not None and started is not None and started != info["start"]:
            return f"process {pid} on this host is another process now (PID reused)"
        return None
    if age > stale_after:
        return f"not touched for {age:.0f} s"
    return None


def create(lock: Path) -> bool:
    """Create the lock holding this process's identity; False when it already exists."""
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{lock.name}.", dir=lock.parent)
    except OSError as e:
        raise AdapterxlError(f"cannot create the lock {lock}: {e.strerror}") from e
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(owner(), f)
        os.link(tmp, lock)
        return True
    except FileExistsError:
        return False
    except OSError as e:
        raise AdapterxlError(f"cannot create the lock {lock}: {e.strerror}") from e
    finally:
        Path(tmp).unlink(missing_ok=True)


def break_stale(lock: Path, judged: dict) -> None:
    """Remove a lock judged stale with content `judged`. Rename first: of several processes
    breaking the same lock only one rename succeeds; if what was renamed is not the lock
    judged (a new holder took it meanwhile), put it back."""
    lock = Path(lock)
    aside = lock.with_name(f"{lock.name}.stale-{os.getpid()}-{time.time_ns()}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return
    if read(aside) != judged:
        try:
            os.link(aside, lock)
        except FileExistsError:
            pass
    aside.unlink(missing_ok=True)


def timed_out(lock: Path, waited: float) -> AdapterxlError:
    return AdapterxlError(
        f"gave up after waiting {waited:.0f} s for the lock {lock} (held by {holder(lock)}); "
        f"if that process is not running any more, delete {lock}")


def release(lock: Path) -> None:
    if mine(lock):
        Path(lock).unlink(missing_ok=True)


def acquire_output(lock: Path, what: str, stale_after: float = 600.0, echo=None) -> bool:
    """Take the lock of an output directory without waiting: a second writer refuses at
    once, naming the holder. A stale lock is broken (and said so). Returns False when this
    process already held it (the caller must then not release it)."""
    lock = Path(lock)
    if mine(lock):
        return False
    while not create(lock):
        judged = read(lock)
        why = stale(lock, stale_after)
        if not why:
            raise AdapterxlError(f"another process ({holder(lock)}) is writing {what} (lock "
                                 f"{lock}); wait for it to finish, or write elsewhere")
        if echo:
            echo(f"removing the stale lock {lock} ({why})")
        break_stale(lock, judged)
    return True
