"""The one exception type users see as a single line (the CLI turns it into exit code 2)."""
from __future__ import annotations

import difflib


class AdapterxlError(Exception):
    """A problem with the user's input or environment, explained in one line."""


def unknown(kind: str, name: str, choices) -> AdapterxlError:
    """'unknown task 'mlni' (did you mean 'mnli'?); known: ...'"""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=2, cutoff=0.5)
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return AdapterxlError(f"unknown {kind} {name!r}{hint}; known: {', '.join(choices)}")
