"""Zero-shot evaluation (run.py: a module on a task's languages, or on a whole suite) and its
tables (tables.py); the metrics, bootstrap intervals and nearest-neighbour search it scores
with live beside them."""
from .run import check_predictable, default_source, evaluate, evaluate_suite, language_swap
from .tables import QA_METRICS, format_suite, format_table

__all__ = ["QA_METRICS", "check_predictable", "default_source", "evaluate", "evaluate_suite",
           "format_suite", "format_table", "language_swap"]
