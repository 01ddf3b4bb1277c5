"""Build the second practice question set from ``questions.src.jsonl``: run each gold SQL, split dev/held-out.

``python -m bench.practice2.build`` writes ``dev/questions.jsonl`` and ``heldout/questions.jsonl``
with the same rules as ``bench.practice.build`` (same alternation within each table, ids
``q2-NNN``); see ``README.md`` beside this file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.practice.build import build

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    print(build(HERE, id_prefix="q2"), file=sys.stderr)
