"""The datasets this service answers questions about: the registry plus ad-hoc CSV sets."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from analyst_service.catalog import adhoc_dataset, load_registry, table_path
from analyst_service.errors import InvalidRequestError, NotFoundError
from analyst_service.files import DigestCache
from csv_analyst.v1 import dataset_pb2


@dataclass
class DatasetRegistry:
    """Registry datasets (loaded once) and ad-hoc datasets (built on demand; the last `max_adhoc`
    path sets are kept for GetDataset). Thread-safe: `resolve` runs off the event loop."""

    datasets_dir: Path
    allow_csv_paths: bool = True
    _registered: dict[str, dataset_pb2.Dataset] = field(default_factory=dict)
    max_adhoc: int = 256
    _adhoc: OrderedDict[tuple[str, ...], dataset_pb2.Dataset] = field(default_factory=OrderedDict)
    _host_paths: dict[str, str] = field(default_factory=dict)
    _digests: DigestCache = field(default_factory=DigestCache)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if (self.datasets_dir / "registry.json").exists():
            self._registered = {d.dataset_id: d for d in load_registry(self.datasets_dir)}

    def list(self) -> list[dataset_pb2.Dataset]:
        """Registry datasets in registry order."""
        return list(self._registered.values())

    def get(self, name: str) -> dataset_pb2.Dataset:
        """Return the dataset named `datasets/{id}` or `{id}` (registry or an ad-hoc one seen before).

        Raises:
            NotFoundError: When there is no such dataset.
        """
        dataset_id = name.removeprefix("datasets/")
        if dataset_id in self._registered:
            return self._registered[dataset_id]
        with self._lock:
            for dataset in self._adhoc.values():
                if dataset.dataset_id == dataset_id:
                    return dataset
        known = ", ".join(self._registered) or "none (run `csv-analyst datasets generate`)"
        raise NotFoundError(message=f"dataset {dataset_id!r} does not exist; known datasets: {known}",
                            metadata={"resource_type": "dataset", "name": f"datasets/{dataset_id}"})

    def resolve(self, dataset_id: str, csv_paths: list[str]) -> dataset_pb2.Dataset:
        """Return the dataset a request names: exactly one of a dataset id or CSV paths.

        Raises:
            InvalidRequestError: For both or neither, or CSV paths when they are disabled.
            NotFoundError: For an unknown dataset id.
        """
        if bool(dataset_id) == bool(csv_paths):
            raise InvalidRequestError(message="give exactly one of dataset_id and csv_paths",
                                      violations=[("dataset_id", "exactly one of dataset_id and csv_paths is required")])
        if dataset_id:
            return self.get(dataset_id)
        if not self.allow_csv_paths:
            raise InvalidRequestError(message="this server does not accept CSV paths (allow_csv_paths is off)",
                                      violations=[("csv_paths", "disabled on this server")])
        key = tuple(str(Path(p).expanduser().resolve()) for p in csv_paths)
        # Reads (and hashes) files whose identity changed: call it off the event loop.
        dataset = adhoc_dataset([Path(p) for p in key], self._digests)
        with self._lock:
            self._adhoc[key] = dataset
            self._adhoc.move_to_end(key)
            while len(self._adhoc) > self.max_adhoc:
                self._adhoc.popitem(last=False)
        return dataset

    def host_path(self, table: dataset_pb2.Table) -> str:
        """Absolute host path of a table's CSV file (resolved once per path: every run asks)."""
        if Path(table.file).is_absolute():
            return table.file  # ad-hoc tables: resolved when the dataset was built
        resolved = self._host_paths.get(table.file)
        if resolved is None:
            resolved = self._host_paths[table.file] = str(table_path(self.datasets_dir, table).resolve())
        return resolved
