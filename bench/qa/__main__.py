"""``python -m bench.qa``: run the open question sets and print execution accuracy."""

from bench.qa.run import main

raise SystemExit(main())
