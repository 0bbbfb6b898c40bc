"""Stopping a training run cleanly when asked to: a cluster's preemption or time-limit signal
(SIGTERM, SIGUSR1; Slurm's `--signal`) or Ctrl-C (SIGINT).

The signal only sets a flag; the training loop looks at it at the next optimizer-step
boundary (never with gradients half accumulated), writes a checkpoint there and raises
`Stopped`, whose message says how to resume. A second Ctrl-C stops at once, with the last
checkpoint's location. Handlers are installed only while the loop runs, and only from the
main thread (Python delivers signals there), so a notebook's own interrupt handling is back
once training returns."""
from __future__ import annotations

import signal
import threading

from .errors import AdapterxlError

SIGNALS = ("SIGTERM", "SIGUSR1", "SIGINT")


class Stopped(AdapterxlError):
    """Training stopped on a signal after writing a checkpoint; the CLI exits 128 + signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class Interrupted(KeyboardInterrupt):
    """A second Ctrl-C: stopped at once; the message says where the last checkpoint is."""


class StopRequest:
    """`with StopRequest(hint) as stop:` ... `if stop.signum is not None:` checkpoint and stop.
    `hint()` says where the last checkpoint is (for a second Ctrl-C)."""

    def __init__(self, hint=lambda: ""):
        self.signum: int | None = None
        self._hint = hint
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise Interrupted(self._hint())
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for name in SIGNALS:
                if hasattr(signal, name):  # no SIGUSR1 on Windows
                    signum = getattr(signal, name)
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
