"""Data roots: the only host files the runner service will mount into a sandbox.

Every table path of a request is resolved (symlinks and `..` included) and must name a regular
file at or under one of the roots: the datasets directory, the materialised cache, the upload
store and any CSV roots the operator configured. A refusal never says whether the path exists.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

REFUSAL = "is not a file this runner serves (only files under its data roots are)"


class DataRoots:
    """A set of directories (or single files) whose files may be mounted into sandboxes."""

    def __init__(self, roots: Iterable[Path | str]) -> None:
        self._roots = tuple(sorted({os.path.realpath(os.fspath(root)) for root in roots}))

    @property
    def roots(self) -> tuple[str, ...]:
        """The resolved roots."""
        return self._roots

    def resolve(self, path: str) -> str | None:
        """The resolved path of a servable regular file, or None (outside every root, or no such file).

        Relative paths are refused: a caller never names a file relative to the service's directory.
        """
        if not path or not os.path.isabs(path) or "\0" in path:
            return None
        resolved = os.path.realpath(path)
        if not any(resolved == root or resolved.startswith(root.rstrip("/") + "/") for root in self._roots):
            return None
        try:
            info = os.stat(resolved)
        except (OSError, ValueError):
            return None
        return resolved if stat.S_ISREG(info.st_mode) else None
