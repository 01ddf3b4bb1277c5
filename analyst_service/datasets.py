"""The datasets this service answers questions about: the registry plus ad-hoc CSV sets."""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from analyst_service.catalog import adhoc_dataset, load_registry, table_path
from analyst_service.errors import DatasetNotDeletableError, InvalidRequestError, NotFoundError, PermissionDeniedError
from analyst_service.files import DigestCache
from analyst_service.uploads import UploadStore
from csv_analyst.v1 import dataset_pb2

log = logging.getLogger(__name__)


@dataclass
class DatasetRegistry:
    """Registry datasets (loaded once), uploads (listed at start) and ad-hoc datasets from CSV
    paths under the CSV roots (built on demand; the last `max_adhoc` path sets are kept for
    GetDataset). Thread-safe: `resolve` reads files and runs off the event loop."""

    datasets_dir: Path
    csv_roots: tuple[Path, ...] = ()
    uploads: UploadStore | None = None
    _registered: dict[str, dataset_pb2.Dataset] = field(default_factory=dict)
    max_adhoc: int = 256
    _uploaded: dict[str, dataset_pb2.Dataset] = field(default_factory=dict)
    _adhoc: OrderedDict[tuple[str, ...], dataset_pb2.Dataset] = field(default_factory=OrderedDict)
    _host_paths: dict[str, str] = field(default_factory=dict)
    _digests: DigestCache = field(default_factory=DigestCache)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if (self.datasets_dir / "registry.json").exists():
            self._registered = {d.dataset_id: d for d in load_registry(self.datasets_dir)}
        if self.uploads is not None:
            self._uploaded = {d.dataset_id: d for d in self.uploads.list()}
        self._roots = tuple(sorted({os.path.realpath(root) for root in self.csv_roots}))

    def list(self) -> list[dataset_pb2.Dataset]:
        """Registry datasets in registry order, then uploads."""
        return [*self._registered.values(), *self._uploaded.values()]

    def is_listed(self, dataset_id: str) -> bool:
        """Whether a registry dataset or a registered upload has this id."""
        return dataset_id in self._registered or dataset_id in self._uploaded

    def is_unprofiled_upload(self, dataset: dataset_pb2.Dataset) -> bool:
        """Whether this is an upload listed from the store whose columns are not known yet."""
        return dataset.dataset_id in self._uploaded and any(not table.columns for table in dataset.tables)

    def refresh_upload(self, dataset: dataset_pb2.Dataset) -> dataset_pb2.Dataset:
        """Keep an upload's profile, unless it was deleted meanwhile."""
        with self._lock:
            if dataset.dataset_id in self._uploaded:
                self._uploaded[dataset.dataset_id] = dataset
        return dataset

    def add_upload(self, dataset: dataset_pb2.Dataset) -> dataset_pb2.Dataset:
        """Register (or re-register with its profile) an uploaded dataset."""
        self._uploaded[dataset.dataset_id] = dataset
        return dataset

    def delete_upload(self, name: str) -> dataset_pb2.Dataset:
        """Delete the uploaded dataset `datasets/{id}` or `{id}`: its files and its listing.

        Blocking (removes files): call it off the event loop.

        Returns:
            The dataset as it was.

        Raises:
            DatasetNotDeletableError: For a registry or ad-hoc dataset.
            NotFoundError: When there is no such dataset.
        """
        dataset = self.get(name)
        if dataset.dataset_id not in self._uploaded or self.uploads is None:
            raise DatasetNotDeletableError(
                message=f"dataset {dataset.dataset_id!r} is not an upload; only uploaded datasets "
                        "(`upload-...`) can be deleted",
                metadata={"dataset_id": dataset.dataset_id})
        with self._lock:
            if self._uploaded.pop(dataset.dataset_id, None) is None:
                raise NotFoundError(message=f"dataset {dataset.dataset_id!r} was deleted already",
                                    metadata={"resource_type": "dataset", "name": dataset.name})
        try:
            self.uploads.delete(dataset.version_hash)
        except FileNotFoundError:
            log.warning("upload %s had no files left to delete", dataset.dataset_id)
        return dataset

    def get(self, name: str) -> dataset_pb2.Dataset:
        """Return the dataset named `datasets/{id}` or `{id}` (registry, upload or an ad-hoc one seen before).

        Raises:
            NotFoundError: When there is no such dataset.
        """
        dataset_id = name.removeprefix("datasets/")
        if dataset_id in self._registered:
            return self._registered[dataset_id]
        if dataset_id in self._uploaded:
            return self._uploaded[dataset_id]
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
            InvalidRequestError: For both or neither.
            PermissionDeniedError: For a CSV path outside the CSV roots (the same refusal whether
                or not it exists).
            NotFoundError: For an unknown dataset id.
        """
        if bool(dataset_id) == bool(csv_paths):
            raise InvalidRequestError(message="give exactly one of dataset_id and csv_paths",
                                      violations=[("dataset_id", "exactly one of dataset_id and csv_paths is required")])
        if dataset_id:
            return self.get(dataset_id)
        key = tuple(self._under_roots(index, path) for index, path in enumerate(csv_paths))
        # Reads (and hashes) files whose identity changed: call it off the event loop.
        dataset = adhoc_dataset([Path(p) for p in key], self._digests)
        with self._lock:
            self._adhoc[key] = dataset
            self._adhoc.move_to_end(key)
            while len(self._adhoc) > self.max_adhoc:
                self._adhoc.popitem(last=False)
        return dataset

    def _under_roots(self, index: int, path: str) -> str:
        resolved = os.path.realpath(path) if os.path.isabs(path) and "\0" not in path else ""
        if resolved and any(resolved == root or resolved.startswith(root.rstrip("/") + "/") for root in self._roots):
            return resolved
        log.warning("refused server-side CSV path %r", path)
        raise PermissionDeniedError(
            message=f"csv_paths[{index}] is not under a CSV root of this server (server-side paths are refused "
                    "unless the operator allows a directory with --csv-root); upload the file instead "
                    "(UploadDataset, or `csv-analyst ask --server ... --csv FILE`)",
            metadata={"field": f"csv_paths[{index}]"})

    def host_path(self, table: dataset_pb2.Table) -> str:
        """Absolute host path of a table's CSV file (resolved once per path: every run asks)."""
        if Path(table.file).is_absolute():
            return table.file  # ad-hoc tables: resolved when the dataset was built
        resolved = self._host_paths.get(table.file)
        if resolved is None:
            resolved = self._host_paths[table.file] = str(table_path(self.datasets_dir, table).resolve())
        return resolved
