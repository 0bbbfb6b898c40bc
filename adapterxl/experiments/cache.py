"""The content-addressed module cache, shared by every recipe and every run directory.

A module lives in ``<cache>/<task>-<key[:16]>/`` where ``key`` is the sha256 of everything that
determines it (``ModuleSpec.material``: backbone, method and config, data, hyperparameters,
seed, and the keys of the modules beneath it). It is complete when its
``train-results.json`` exists (train_module writes that after the module directory was swapped
in atomically); ``cache.json`` beside it records the key material, the training cost and when.

Concurrency: one process trains a key at a time. It holds ``<cache>/<name>.lock`` (created
with O_EXCL; holds host, pid and time) and touches it every `heartbeat` seconds while it
trains. Others wait and poll; when the module appears they reuse it. A lock is stale when its
holder's process is gone (same host) or it was not touched for `stale_after` seconds (any
host): the next waiter breaks it and continues the interrupted training from its checkpoint
(``<module>.checkpoint/``, TrainConfig.resume).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .. import _io
from ..errors import AdapterxlError


def default_root() -> Path:
    from ..backbone import home

    return home() / "modules"


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)[:60]


class ModuleCache:
    def __init__(self, root=None, heartbeat: float = 30.0, stale_after: float = 600.0,
                 poll: float = 2.0, echo=print):
        self.root = (Path(root).expanduser() if root else default_root()).resolve()
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self.poll = poll
        self.echo = echo

    def path(self, key: str, task: str) -> Path:
        return self.root / f"{_safe(task.replace(',', '+'))}-{key[:16]}"

    def lookup(self, key: str, task: str) -> dict | None:
        """The cache entry of a complete module, or None."""
        path = self.path(key, task)
        results = path / "train-results.json"
        if not results.is_file():
            return None
        entry_file = path / "cache.json"
        try:
            entry = json.loads(entry_file.read_text(encoding="utf-8"))
            if entry.get("key") == key:
                return entry
        except (OSError, json.JSONDecodeError):
            pass
        # Trained, but the process died before writing cache.json: rebuild it.
        result = json.loads(results.read_text(encoding="utf-8"))
        entry = self._entry(key, task, path, result, None)
        _io.write_json(entry_file, entry)
        return entry

    def _entry(self, key, task, path, result, material) -> dict:
        return {"key": key, "task": task, "path": str(path), "material": material,
                "device_seconds": result.get("train_seconds"), "tokens": result.get("tokens"),
                "tokens_per_second": result.get("tokens_per_second"),
                "trainable_parameters": result.get("trainable_parameters"),
                "steps": result.get("steps"), "dev": result.get("dev"),
                "created": time.time()}

    def ensure(self, key: str, task: str, material: dict, train) -> tuple[dict, bool]:
        """The module for `key`: from the cache, or trained by `train(path, resume)` (which
        returns train_module's result) under the key's lock. Returns (entry, trained_now)."""
        path = self.path(key, task)
        while True:
            entry = self.lookup(key, task)
            if entry is not None:
                return entry, False
            with self.lock(key, task) as held:
                if not held:
                    continue
                entry = self.lookup(key, task)
                if entry is not None:
                    return entry, False
                from ..checkpoint import directory, exists
                resume = exists(directory(path))
                result = train(path, resume)
                entry = self._entry(key, task, path, result, material)
                entry["resumed"] = resume
                _io.write_json(path / "cache.json", entry)
                return entry, True

    # --- locks -------------------------------------------------------------------------------

    def lock_path(self, key: str, task: str) -> Path:
        p = self.path(key, task)
        return p.with_name(p.name + ".lock")

    @contextmanager
    def lock(self, key: str, task: str):
        """Yields True once this process holds the key's lock (waiting for another holder;
        breaking a stale lock), or False when the lock went away because the module is there
        (the caller looks it up again)."""
        lock = self.lock_path(key, task)
        self.root.mkdir(parents=True, exist_ok=True)
        waited = False
        while True:
            if self._try_create(lock):
                break
            if self.lookup(key, task) is not None:
                yield False
                return
            judged = _read(lock)
            why = self.stale(lock)
            if why:
                self.echo(f"cache: breaking the stale lock {lock.name} ({why})")
                self._break(lock, judged)
                continue
            if not waited:
                self.echo(f"cache: waiting for another process training {lock.name[:-5]} "
                          f"({_holder(lock)})")
                waited = True
            time.sleep(self.poll)
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(lock, stop), daemon=True)
        beat.start()
        try:
            yield True
        finally:
            stop.set()
            beat.join()
            try:
                if _read(lock).get("pid") == os.getpid():
                    lock.unlink()
            except FileNotFoundError:
                pass

    def _try_create(self, lock: Path) -> bool:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as e:
            raise AdapterxlError(f"cannot create the cache lock {lock}: {e.strerror}") from e
        with os.fdopen(fd, "w") as f:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()},
                      f)
        return True

    def _beat(self, lock: Path, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat):
            try:
                os.utime(lock)
            except OSError:
                return

    def stale(self, lock: Path) -> str | None:
        """Why the lock is stale, or None while its holder may still be working."""
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return None
        info = _read(lock)
        if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
            if not _alive(info["pid"]):
                return f"process {info['pid']} on this host is gone"
            return None
        if age > self.stale_after:
            return f"not touched for {age:.0f} s"
        return None

    def _break(self, lock: Path, judged: dict) -> None:
        # Rename first: of several waiters breaking the same lock, only one rename succeeds.
        # If what was renamed is not the lock judged stale (another waiter broke that one and
        # a new holder took the key meanwhile), put it back.
        aside = lock.with_name(f"{lock.name}.stale-{os.getpid()}-{time.time_ns()}")
        try:
            os.rename(lock, aside)
        except FileNotFoundError:
            return
        if _read(aside) != judged:
            try:
                os.link(aside, lock)
            except FileExistsError:
                pass
        aside.unlink(missing_ok=True)


def _read(lock: Path) -> dict:
    try:
        return json.loads(lock.read_text(encoding="utf-8") or "{}")
    except (OSError, json.JSONDecodeError):
        return {}


def _holder(lock: Path) -> str:
    info = _read(lock)
    return f"pid {info.get('pid')} on {info.get('host')}" if info else "unknown holder"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
