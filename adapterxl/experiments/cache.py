"""The content-addressed module cache, shared by every recipe and every run directory.

A module lives in ``<cache>/<task>-<key[:16]>/`` where ``key`` is the sha256 of everything that
determines it (``ModuleSpec.material``: backbone, method and config, data, hyperparameters,
seed, and the keys of the modules beneath it). It is complete when its
``train-results.json`` exists (train_module writes that after the module directory was swapped
in atomically); ``cache.json`` beside it records the key material, the training cost and when.

Concurrency: one process trains a key at a time. It holds ``<cache>/<name>.lock`` (see
adapterxl.lock: host, PID and the process's start time) and touches it every `heartbeat`
seconds while it trains. Others wait and poll, at most `timeout` seconds; when the module
appears they reuse it. A lock is stale when its holder's process is gone or its PID now
belongs to another process (same host), when its content is unreadable, or when it was not
touched for `stale_after` seconds (another host): the next waiter breaks it and continues the
interrupted training from its checkpoint (``<module>.checkpoint/``, TrainConfig.resume).
"""
from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .. import _io
from .. import lock as locks


def default_root() -> Path:
    from ..backbone import home

    return home() / "modules"


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)[:60]


class ModuleCache:
    def __init__(self, root=None, heartbeat: float = 30.0, stale_after: float = 600.0,
                 poll: float = 2.0, echo=print, timeout: float = 24 * 3600.0):
        self.root = (Path(root).expanduser() if root else default_root()).resolve()
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self.poll = poll
        self.echo = echo
        self.timeout = timeout

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
        waited, since = False, time.monotonic()
        while True:
            if locks.create(lock):
                break
            if self.lookup(key, task) is not None:
                yield False
                return
            judged = locks.read(lock)
            why = self.stale(lock)
            if why:
                self.echo(f"cache: breaking the stale lock {lock.name} ({why})")
                locks.break_stale(lock, judged)
                continue
            if time.monotonic() - since > self.timeout:
                raise locks.timed_out(lock, time.monotonic() - since)
            if not waited:
                self.echo(f"cache: waiting for another process training {lock.name[:-5]} "
                          f"({locks.holder(lock)})")
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
            locks.release(lock)

    def _beat(self, lock: Path, stop: threading.Event) -> None:
        while not stop.wait(self.heartbeat):
            try:
                os.utime(lock)
            except OSError:
                return

    def stale(self, lock: Path) -> str | None:
        """Why the lock is stale, or None while its holder may still be working."""
        return locks.stale(lock, self.stale_after)
