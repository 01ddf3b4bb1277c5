"""The dataset catalog: registry datasets from `registry.json` and ad-hoc datasets from CSV paths.

Ad-hoc tables start without columns: CSV files are untrusted, so their schema is detected by
`analyst_service.profiling` inside the sandbox, never by parsing them in this process.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any
from analyst_service.errors import InvalidRequestError
from analyst_service.files import DigestCache
from csv_analyst.v1 import dataset_pb2

REGISTRY_FILE = "registry.json"


def load_registry(datasets_dir: Path) -> list[dataset_pb2.Dataset]:
    """Read `<datasets_dir>/registry.json` into Dataset messages.

    Args:
        datasets_dir: Directory holding registry.json and the CSV files it names.

    Returns:
        The datasets in registry order, with `name = "datasets/{id}"` and table files kept
        relative to datasets_dir.

    Raises:
        FileNotFoundError: When registry.json does not exist (run `csv-analyst datasets generate`).
        ValueError: When registry.json is not valid JSON of the expected shape.
    """
    path = Path(datasets_dir) / REGISTRY_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return [_dataset_from_json(entry) for entry in document["datasets"]]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist; run `csv-analyst datasets generate` first") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a valid dataset registry: {error!r}") from error


def _dataset_from_json(entry: dict[str, Any]) -> dataset_pb2.Dataset:
    return dataset_pb2.Dataset(
        name=f"datasets/{entry['id']}",
        dataset_id=entry["id"],
        title=entry.get("title", ""),
        description=entry.get("description", ""),
        version_hash=entry.get("version_hash", ""),
        tables=[
            dataset_pb2.Table(
                name=table["name"],
                file=table["file"],
                columns=[
                    dataset_pb2.Column(name=c["name"], type=c["type"], description=c.get("description", ""))
                    for c in table["columns"]
                ],
            )
            for table in entry["tables"]
        ],
        relationships=[dataset_pb2.Relationship(**rel) for rel in entry.get("relationships", [])],
        prompts=list(entry.get("prompts", [])),
    )


def table_path(datasets_dir: Path, table: dataset_pb2.Table) -> Path:
    """Return the CSV path of a table, resolving relative files against datasets_dir.

    Args:
        datasets_dir: The registry directory.
        table: A table of a registry or ad-hoc dataset.

    Returns:
        An absolute path when datasets_dir is absolute or the table file is absolute.
    """
    file = Path(table.file)
    return file if file.is_absolute() else Path(datasets_dir) / file


def table_name_for(path: Path) -> str:
    """Return the table name of an ad-hoc CSV: the lower-cased stem, non-alphanumerics as `_`.

    Args:
        path: The CSV path.
    """
    return re.sub(r"[^a-z0-9]", "_", path.stem.lower())


def adhoc_dataset(csv_paths: list[Path], digests: DigestCache | None = None) -> dataset_pb2.Dataset:
    """Build an ad-hoc dataset with one table per CSV file.

    Args:
        csv_paths: The CSV files, in table order.
        digests: Cache of file digests by file identity (a fresh one when None).

    Returns:
        A Dataset whose version_hash is the SHA-256 over each table's name and its file's
        content digest (in order), whose id is `adhoc-` + the first 12 hex digits of it (two
        byte-identical files under different names are different datasets), and whose table
        files are absolute paths.

    Raises:
        InvalidRequestError: When no file is given, a file is missing, unreadable, empty or not
            parseable as CSV, or two files map to the same table name.
    """
    if not csv_paths:
        raise InvalidRequestError(message="no CSV files given; pass at least one --csv PATH")
    digests = DigestCache() if digests is None else digests
    digest = hashlib.sha256()
    tables: list[dataset_pb2.Table] = []
    seen: dict[str, Path] = {}
    for raw in csv_paths:
        path = Path(raw).expanduser().resolve()
        name = table_name_for(path)
        if name in seen:
            raise InvalidRequestError(
                message=f"CSV files {seen[name]} and {path} both become table {name!r}; rename one of them",
                metadata={"table": name, "path": str(path), "other_path": str(seen[name])},
            )
        seen[name] = path
        content = _content_digest(path, digests)
        digest.update(f"{name}\0{content}\0".encode())
        tables.append(dataset_pb2.Table(name=name, file=str(path)))
    version_hash = digest.hexdigest()
    dataset_id = f"adhoc-{version_hash[:12]}"
    return dataset_pb2.Dataset(
        name=f"datasets/{dataset_id}",
        dataset_id=dataset_id,
        title="Ad-hoc CSV files",
        description="Tables from " + ", ".join(str(Path(p)) for p in csv_paths) + ".",
        version_hash=version_hash,
        tables=tables,
    )


def _content_digest(path: Path, digests: DigestCache) -> str:
    if not path.is_file():
        raise InvalidRequestError(message=f"CSV file {path} does not exist or is not a file",
                                  metadata={"path": str(path)})
    try:
        _, digest = digests.digest(str(path))
    except OSError as error:
        raise InvalidRequestError(message=f"CSV file {path} cannot be read: {error.strerror}",
                                  metadata={"path": str(path)}) from error
    if digest.blank:
        raise InvalidRequestError(message=f"CSV file {path} is empty", metadata={"path": str(path)})
    return digest.sha256
