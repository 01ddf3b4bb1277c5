"""The demo dataset generator: determinism, scaling, registry shape, hashes, types and content."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import duckdb
import pytest

from datasets.generator import generate

SCALE = 0.02


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    generate(out, SCALE)
    return out


def _registry(out: Path) -> dict:
    return json.loads((out / "registry.json").read_text(encoding="utf-8"))


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _rows(out: Path, file: str) -> list[dict[str, str]]:
    with (out / file).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_output_is_byte_identical_across_runs(generated: Path, tmp_path: Path) -> None:
    again = generate(tmp_path / "again", SCALE)
    assert again == tmp_path / "again" / "registry.json"
    assert _files(generated) == _files(tmp_path / "again")
    assert len(_files(generated)) == 6  # five CSVs and the registry


def test_row_counts_scale_linearly(generated: Path, tmp_path: Path) -> None:
    generate(tmp_path, SCALE * 2)
    for file, at_scale_1 in [("ecommerce/orders.csv", 20_000), ("support/tickets.csv", 10_000),
                             ("sensors/sensors.csv", 100_000)]:
        small, large = len(_rows(generated, file)), len(_rows(tmp_path, file))
        assert small == pytest.approx(at_scale_1 * SCALE, rel=0.01)
        assert large == pytest.approx(2 * small, rel=0.01)


def test_invalid_scale_is_rejected(tmp_path: Path) -> None:
    for scale in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale"):
            generate(tmp_path, scale)


def test_registry_shape(generated: Path) -> None:
    registry = _registry(generated)
    assert list(registry) == ["datasets"]
    assert [d["id"] for d in registry["datasets"]] == ["ecommerce", "support", "sensors"]
    for dataset in registry["datasets"]:
        assert list(dataset) == ["id", "title", "description", "version_hash", "tables", "relationships", "prompts"]
        assert dataset["title"] and dataset["description"]
        assert len(dataset["prompts"]) >= 6 and len(set(dataset["prompts"])) == len(dataset["prompts"])
        for table in dataset["tables"]:
            assert list(table) == ["name", "file", "columns"]
            assert table["file"] == f"{dataset['id']}/{table['name']}.csv"
            for column in table["columns"]:
                assert list(column) == ["name", "type", "description"] and column["description"]
        columns = {(t["name"], c["name"]) for t in dataset["tables"] for c in t["columns"]}
        for rel in dataset["relationships"]:
            assert list(rel) == ["from_table", "from_column", "to_table", "to_column"]
            assert (rel["from_table"], rel["from_column"]) in columns and (rel["to_table"], rel["to_column"]) in columns
    ecommerce = registry["datasets"][0]
    assert {(r["from_table"], r["to_table"]) for r in ecommerce["relationships"]} == {
        ("order_items", "orders"), ("order_items", "inventory")}
    schema = {t["name"]: [c["name"] for c in t["columns"]] for d in registry["datasets"] for t in d["tables"]}
    assert schema == {
        "orders": ["order_id", "customer_id", "order_date", "total", "status", "returned"],
        "order_items": ["item_id", "order_id", "product_id", "category", "quantity", "price", "discount"],
        "inventory": ["product_id", "name", "category", "stock"],
        "tickets": ["ticket_id", "created_at", "resolved_at", "category", "priority", "csat_score", "sla_met"],
        "sensors": ["sensor_id", "timestamp", "location", "temp", "humidity", "anomaly_flag"],
    }


def test_version_hash_is_sha256_of_files_in_table_order(generated: Path) -> None:
    for dataset in _registry(generated)["datasets"]:
        digest = hashlib.sha256()
        for table in dataset["tables"]:
            digest.update((generated / table["file"]).read_bytes())
        assert dataset["version_hash"] == digest.hexdigest()


def test_declared_types_match_duckdb_detection(generated: Path) -> None:
    connection = duckdb.connect()
    for dataset in _registry(generated)["datasets"]:
        for table in dataset["tables"]:
            path = str(generated / table["file"])
            detected = connection.execute("DESCRIBE SELECT * FROM read_csv(?, header = true)", [path]).fetchall()
            assert [(name, type_) for name, type_, *_ in detected] == [(c["name"], c["type"]) for c in table["columns"]]


def test_nulls_are_present_where_documented(generated: Path) -> None:
    connection = duckdb.connect()

    def nulls(file: str, column: str) -> int:
        return connection.execute(f"SELECT count(*) FILTER (WHERE {column} IS NULL) FROM read_csv(?)",
                                  [str(generated / file)]).fetchone()[0]

    assert nulls("ecommerce/orders.csv", "customer_id") > 0
    assert nulls("support/tickets.csv", "resolved_at") > 0
    assert nulls("support/tickets.csv", "csat_score") > 0
    assert nulls("sensors/sensors.csv", "temp") + nulls("sensors/sensors.csv", "humidity") > 0
    assert nulls("ecommerce/orders.csv", "order_id") == 0


def test_content_is_consistent(generated: Path) -> None:
    connection = duckdb.connect()
    for table in ("orders", "order_items", "inventory"):
        connection.execute(f"CREATE VIEW {table} AS SELECT * FROM read_csv('{generated / 'ecommerce' / table}.csv')")
    connection.execute(f"CREATE VIEW tickets AS SELECT * FROM read_csv('{generated / 'support/tickets.csv'}')")
    connection.execute(f"CREATE VIEW sensors AS SELECT * FROM read_csv('{generated / 'sensors/sensors.csv'}')")

    def one(sql: str) -> object:
        return connection.execute(sql).fetchone()[0]

    # total = sum(quantity * price * (1 - discount)) rounded to cents (float sums may differ by a cent).
    assert one("""SELECT max(abs(o.total - s.amount)) FROM orders o JOIN (SELECT order_id,
               sum(quantity * price * (1 - discount)) AS amount FROM order_items GROUP BY 1) s USING (order_id)""") <= 0.0101
    assert one("SELECT count(*) FROM orders WHERE order_id NOT IN (SELECT order_id FROM order_items)") == 0
    assert one("SELECT count(*) FROM order_items WHERE product_id NOT IN (SELECT product_id FROM inventory)") == 0
    assert one("SELECT count(*) FROM order_items i JOIN inventory p USING (product_id) WHERE i.category <> p.category") == 0
    assert one("SELECT count(DISTINCT name) = count(*) FROM inventory")
    assert one("SELECT string_agg(DISTINCT status, ',' ORDER BY status) FROM orders") == "cancelled,completed,pending,shipped"
    assert one("SELECT count(*) FROM orders WHERE returned AND status <> 'completed'") == 0
    assert one("SELECT min(order_date) >= DATE '2023-01-01' AND max(order_date) <= DATE '2024-12-31' FROM orders")
    assert one("SELECT min(created_at) >= TIMESTAMP '2023-01-01' AND max(created_at) < TIMESTAMP '2025-01-01' FROM tickets")
    assert one("SELECT min(timestamp) >= TIMESTAMP '2023-01-01' AND max(timestamp) < TIMESTAMP '2025-01-01' FROM sensors")
    assert one("SELECT count(*) FROM tickets WHERE resolved_at < created_at") == 0
    assert one("SELECT count(*) FROM tickets WHERE csat_score NOT BETWEEN 1 AND 5") == 0
    assert one("SELECT count(*) FROM tickets WHERE resolved_at IS NULL AND sla_met IS NOT NULL") == 0
    assert one("SELECT count(DISTINCT location) FROM sensors") == 10
    assert one("SELECT count(*) FILTER (WHERE anomaly_flag) > 0 FROM sensors")
    # Skewed categories and seasonality: the busiest category and month clearly beat the quietest.
    assert one("SELECT max(n) > 2 * min(n) FROM (SELECT count(*) n FROM order_items GROUP BY category)")
    assert one("""SELECT sum(n) FILTER (WHERE m = 12) > 1.3 * sum(n) FILTER (WHERE m = 2)
               FROM (SELECT month(order_date) m, count(*) n FROM orders GROUP BY 1)""")


def test_description_values_exist_in_data(generated: Path) -> None:
    connection = duckdb.connect()
    for dataset in _registry(generated)["datasets"]:
        for table in dataset["tables"]:
            for column in table["columns"]:
                if "one of " not in column["description"]:
                    continue
                listed = column["description"].split("one of ", 1)[1].rstrip(".").split(", ")
                actual = {row[0] for row in connection.execute(
                    f'SELECT DISTINCT "{column["name"]}" FROM read_csv(?)', [str(generated / table["file"])]).fetchall()}
                assert set(listed) == actual, (table["name"], column["name"])
