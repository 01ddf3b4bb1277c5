"""The dataset catalog: registry loading, table paths and ad-hoc CSV datasets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from analyst_service.catalog import adhoc_dataset, load_registry, table_path
from analyst_service.files import DigestCache
from analyst_service.errors import InvalidRequestError
from datasets.generator import generate


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("catalog")
    generate(out, 0.01)
    return out


def test_load_registry_maps_every_field(registry_dir: Path) -> None:
    datasets = load_registry(registry_dir)
    document = json.loads((registry_dir / "registry.json").read_text())
    assert [d.dataset_id for d in datasets] == ["ecommerce", "support", "sensors"]
    for dataset, entry in zip(datasets, document["datasets"], strict=True):
        assert dataset.name == f"datasets/{entry['id']}"
        assert dataset.title == entry["title"] and dataset.version_hash == entry["version_hash"]
        assert list(dataset.prompts) == entry["prompts"]
        assert [t.file for t in dataset.tables] == [t["file"] for t in entry["tables"]]
        assert [[(c.name, c.type, c.description) for c in t.columns] for t in dataset.tables] == [
            [(c["name"], c["type"], c["description"]) for c in t["columns"]] for t in entry["tables"]]
    relationship = datasets[0].relationships[0]
    assert (relationship.from_table, relationship.from_column, relationship.to_table, relationship.to_column) == (
        "order_items", "order_id", "orders", "order_id")


def test_load_registry_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="datasets generate"):
        load_registry(tmp_path)
    (tmp_path / "registry.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a valid dataset registry"):
        load_registry(tmp_path)


def test_table_path_resolves_relative_files(registry_dir: Path) -> None:
    orders = load_registry(registry_dir)[0].tables[0]
    assert table_path(registry_dir, orders) == registry_dir / "ecommerce" / "orders.csv"
    assert table_path(registry_dir, orders).is_file()
    absolute = adhoc_dataset([table_path(registry_dir, orders)]).tables[0]
    assert table_path(Path("/elsewhere"), absolute) == table_path(registry_dir, orders).resolve()


def test_adhoc_dataset_names_types_and_hash(tmp_path: Path) -> None:
    first = tmp_path / "Sales Report-2024.csv"
    first.write_text("id,amount,day,ok,label\n1,2.5,2024-01-02,true,x\n2,,2024-01-03,false,\n")
    second = tmp_path / "people.CSV"
    second.write_text("name,age\nAda,36\n")
    dataset = adhoc_dataset([first, second])
    contents = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second)]
    digest = hashlib.sha256(f"sales_report_2024\0{contents[0]}\0people\0{contents[1]}\0".encode()).hexdigest()
    assert dataset.version_hash == digest
    assert dataset.dataset_id == f"adhoc-{digest[:12]}" and dataset.name == f"datasets/adhoc-{digest[:12]}"
    assert [t.name for t in dataset.tables] == ["sales_report_2024", "people"]
    assert [t.file for t in dataset.tables] == [str(first.resolve()), str(second.resolve())]
    # Columns are detected later, inside the sandbox (analyst_service.profiling).
    assert all(not t.columns for t in dataset.tables)
    assert adhoc_dataset([first, second]) == dataset


@pytest.mark.parametrize("case", ["missing", "empty", "directory", "duplicate", "none"])
def test_adhoc_dataset_rejects_bad_input(tmp_path: Path, case: str) -> None:
    good = tmp_path / "a.csv"
    good.write_text("x\n1\n")
    paths = {
        "missing": [tmp_path / "nope.csv"],
        "empty": [tmp_path / "empty.csv"],
        "directory": [tmp_path],
        "duplicate": [good, tmp_path / "sub" / "A.csv"],
        "none": [],
    }[case]
    (tmp_path / "empty.csv").write_text("\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "A.csv").write_text("y\n2\n")
    with pytest.raises(InvalidRequestError) as raised:
        adhoc_dataset(paths)
    assert raised.value.reason == "INVALID_ARGUMENT"
    if case == "duplicate":
        assert raised.value.metadata["table"] == "a"


def test_identical_files_under_two_names_are_two_datasets(tmp_path: Path) -> None:
    sales, budget = tmp_path / "sales_a.csv", tmp_path / "budget_b.csv"
    for path in (sales, budget):
        path.write_text("region,amount\nnorth,1\nsouth,2\n")
    first, second = adhoc_dataset([sales]), adhoc_dataset([budget])
    assert first.dataset_id != second.dataset_id and first.version_hash != second.version_hash


def test_an_edit_changes_the_version_even_with_a_shared_digest_cache(tmp_path: Path) -> None:
    digests = DigestCache(max_entries=2)
    path = tmp_path / "sales.csv"
    path.write_text("region,amount\nnorth,1\n")
    before = adhoc_dataset([path], digests)
    assert adhoc_dataset([path], digests) == before
    path.write_text("region,amount\nnorth,1000\n")  # same size, new content
    assert adhoc_dataset([path], digests).version_hash != before.version_hash
    for index in range(5):
        other = tmp_path / f"t{index}.csv"
        other.write_text(f"x\n{index}\n")
        adhoc_dataset([other], digests)
    assert len(digests) == 2
