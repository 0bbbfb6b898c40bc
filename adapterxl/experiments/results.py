"""The run store: ``<run>/store.sqlite``, one per run directory, shared by every shard.

SQLite in WAL mode with a busy timeout, so several processes (shards) write to one store.
Tables (reports read them; columns may be added, never renamed):

- ``run(key, value)``: recipe (the YAML text), recipe_hash, versions (JSON), git_commit,
  created; also overrides (JSON list), name, resolved (the recipe after overrides, JSON).
- ``cells``: one row per grid cell; status pending | running | done | failed | skipped.
- ``metrics(cell, task, language, metric, value)``: the evaluation, per language.
- ``modules``: every module a cell of this run used (trained here or taken from the cache).
"""
from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from ..errors import AdapterxlError

SCHEMA = """
CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS cells (
    id TEXT PRIMARY KEY, backbone TEXT, method TEXT, intermediate TEXT, composition TEXT,
    target TEXT, seed INTEGER, status TEXT, module TEXT, error TEXT, device_seconds REAL,
    tokens INTEGER, peak_memory_bytes INTEGER, started REAL, finished REAL, score REAL,
    parameters INTEGER,
    task TEXT, priority INTEGER, position INTEGER, metric TEXT, languages TEXT,
    trained_modules INTEGER, reused_modules INTEGER, host TEXT);
CREATE TABLE IF NOT EXISTS metrics (
    cell TEXT, task TEXT, language TEXT, metric TEXT, value REAL,
    PRIMARY KEY (cell, task, language, metric));
CREATE TABLE IF NOT EXISTS modules (
    key TEXT PRIMARY KEY, path TEXT, task TEXT, role TEXT, device_seconds REAL,
    tokens INTEGER, created REAL, reused INTEGER,
    backbone TEXT, method TEXT, label TEXT, trained_here INTEGER, steps INTEGER,
    tokens_per_second REAL, parameters INTEGER);
"""
STATUSES = ("pending", "running", "done", "failed", "skipped")


class Store:
    def __init__(self, path, timeout: float = 120.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Switching to WAL while another process creates the store can fail at once with
        # "database is locked" (SQLite does not wait there): retry until the timeout.
        deadline = time.monotonic() + timeout
        while True:
            self.db = None
            try:
                self.db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
                self.db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = NORMAL")
                self.db.executescript(SCHEMA)
                break
            except sqlite3.OperationalError as e:
                if self.db is not None:
                    self.db.close()
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise AdapterxlError(f"cannot open the run store {self.path}: {e}") from e
                time.sleep(0.05)
            except sqlite3.DatabaseError as e:
                raise AdapterxlError(f"cannot open the run store {self.path}: {e}") from e
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _write(self, sql: str, args=()) -> None:
        self.db.execute(sql, args)

    def _many(self, statements) -> None:
        """Several writes in one IMMEDIATE transaction (one writer at a time across shards)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for sql, args in statements:
                self.db.execute(sql, args)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # --- run ---------------------------------------------------------------------------------

    def run_info(self) -> dict:
        return {r["key"]: r["value"] for r in self.db.execute("SELECT key, value FROM run")}

    def init_run(self, info: dict) -> None:
        """Record the run (first process wins), or check that this is the same recipe."""
        self._many([("INSERT OR IGNORE INTO run (key, value) VALUES (?, ?)", (k, v))
                    for k, v in info.items()])
        have = self.run_info()
        if have.get("recipe_hash") != info["recipe_hash"]:
            raise AdapterxlError(
                f"{self.path.parent} holds a run of another recipe (or other overrides): "
                f"recipe hash {str(have.get('recipe_hash'))[:12]} there, "
                f"{info['recipe_hash'][:12]} now; pass another --run-dir")

    # --- cells -------------------------------------------------------------------------------

    def add_cells(self, rows: list[dict]) -> None:
        """Insert cells not yet in the store (pending, or skipped with the reason); existing
        rows keep their status. A skipped cell whose reason went away becomes pending."""
        stmts = []
        for r in rows:
            status = "skipped" if r.get("skip") else "pending"
            stmts.append((
                "INSERT OR IGNORE INTO cells (id, backbone, method, intermediate, composition, "
                "target, seed, status, error, task, priority, position) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (r["id"], r["backbone"], r["method"], r["intermediate"], r["composition"],
                 r["target"], r["seed"], status, r.get("skip"), r["task"], r["priority"],
                 r["position"])))
            if not r.get("skip"):
                stmts.append(("UPDATE cells SET status='pending', error=NULL "
                              "WHERE id=? AND status='skipped'", (r["id"],)))
            else:
                stmts.append(("UPDATE cells SET status='skipped', error=? "
                              "WHERE id=? AND status='pending'", (r["skip"], r["id"])))
        self._many(stmts)

    def cells(self) -> dict[str, dict]:
        return {r["id"]: dict(r) for r in self.db.execute("SELECT * FROM cells")}

    def cell(self, cid: str) -> dict | None:
        r = self.db.execute("SELECT * FROM cells WHERE id=?", (cid,)).fetchone()
        return dict(r) if r else None

    def start_cell(self, cid: str, host: str) -> None:
        self._write("UPDATE cells SET status='running', started=?, finished=NULL, error=NULL, "
                    "host=? WHERE id=?", (time.time(), host, cid))

    def finish_cell(self, cid: str, status: str, **fields) -> None:
        if status not in STATUSES:
            raise ValueError(status)
        fields = {"status": status, "finished": time.time(), **fields}
        sets = ", ".join(f"{k}=?" for k in fields)
        self._write(f"UPDATE cells SET {sets} WHERE id=?", (*fields.values(), cid))

    def reset_cell(self, cid: str) -> None:
        """Back to pending (an interrupted cell)."""
        self._write("UPDATE cells SET status='pending', started=NULL WHERE id=? AND "
                    "status='running'", (cid,))

    def put_metrics(self, cid: str, task: str, per_language: dict) -> None:
        self._many([("INSERT OR REPLACE INTO metrics (cell, task, language, metric, value) "
                     "VALUES (?,?,?,?,?)", (cid, task, lang, metric, float(value)))
                    for lang, values in per_language.items()
                    for metric, value in (values or {}).items()
                    if isinstance(value, (int, float))])

    def metrics(self, cid: str) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM metrics WHERE cell=?", (cid,))]

    # --- modules -----------------------------------------------------------------------------

    def record_module(self, spec, entry: dict, trained: bool) -> None:
        """A module a cell used: trained now (trained=True) or taken from the cache."""
        self._many([
            ("INSERT OR IGNORE INTO modules (key, path, task, role, device_seconds, tokens, "
             "created, reused, backbone, method, label, trained_here, steps, tokens_per_second, "
             "parameters) VALUES (?,?,?,?,?,?,?,0,?,?,?,?,?,?,?)",
             (spec.key, entry["path"], spec.task, spec.role, entry.get("device_seconds"),
              entry.get("tokens"), entry.get("created"), spec.backbone.name, spec.method,
              spec.label, int(trained), entry.get("steps"), entry.get("tokens_per_second"),
              entry.get("trainable_parameters"))),
            # Two shards may record the same module; the one that trained it says so.
            ("UPDATE modules SET trained_here = 1 WHERE key=?", (spec.key,)) if trained else
            ("UPDATE modules SET reused = reused + 1 WHERE key=?", (spec.key,)),
        ])

    def modules(self) -> list[dict]:
        return [dict(r) for r in self.db.execute("SELECT * FROM modules")]

    def throughput(self) -> dict[str, float]:
        """Measured training tokens per second per backbone (modules trained by this run)."""
        out = {}
        for r in self.db.execute(
                "SELECT backbone, SUM(tokens) AS t, SUM(device_seconds) AS s FROM modules "
                "WHERE tokens > 0 AND device_seconds > 0 GROUP BY backbone"):
            out[r["backbone"]] = r["t"] / r["s"]
        return out

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for r in self.db.execute("SELECT status, COUNT(*) AS n FROM cells GROUP BY status"):
            out[r["status"]] = r["n"]
        return out


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)
