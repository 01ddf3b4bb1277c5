"""Soak benchmark: many concurrent clients against a real `serve` for minutes (python -m bench.soak)."""
