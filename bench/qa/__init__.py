"""Execution-accuracy benchmark over the open question sets in ../shared/bench.

Run it with ``python -m bench.qa --set real-dev|wtq-dev|all``; see ``bench/qa/run.py``.
"""
