"""Deterministic generator for the three demo datasets and their registry.

`generate(out_dir, scale)` writes `<out>/<dataset_id>/<table>.csv` for `ecommerce`, `support` and
`sensors`, then `<out>/registry.json`. Row counts scale linearly like TPC-H's scale factor
(scale 1: about 20,000 orders, 10,000 tickets and 100,000 sensor readings). Every random draw
comes from one `random.Random` per dataset with a fixed seed, and files are written with fixed
formatting and `\\n` line endings, so the output is byte-identical across runs and machines.

Run it as `python -m datasets.generator [--scale N] [--out DIR]`.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import random
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any


SEED = 20240601
START = date(2023, 1, 1)
END = date(2024, 12, 31)
DAYS = (END - START).days + 1

Row = Sequence[Any]

PRODUCT_CATEGORIES = [("Clothing", 25), ("Electronics", 22), ("Home", 18), ("Books", 12),
                      ("Sports", 10), ("Beauty", 8), ("Toys", 5)]
PRICE_RANGES = {"Clothing": (8, 120), "Electronics": (15, 600), "Home": (6, 200), "Books": (5, 45),
                "Sports": (10, 250), "Beauty": (4, 60), "Toys": (5, 80)}
ADJECTIVES = ["Classic", "Compact", "Deluxe", "Eco", "Essential", "Premium", "Smart", "Ultra", "Vintage", "Wireless"]
NOUNS = {
    "Clothing": ["Jacket", "T-Shirt", "Jeans", "Sneakers", "Scarf", "Hoodie"],
    "Electronics": ["Headphones", "Laptop", "Monitor", "Speaker", "Camera", "Charger"],
    "Home": ["Lamp", "Kettle", "Blender", "Pillow", "Cookware Set", "Rug"],
    "Books": ["Cookbook", "Novel", "Atlas", "Biography", "Guide"],
    "Sports": ["Yoga Mat", "Tennis Racket", "Bike Helmet", "Dumbbells", "Running Belt"],
    "Beauty": ["Face Cream", "Shampoo", "Perfume", "Lip Balm"],
    "Toys": ["Puzzle", "Building Blocks", "Board Game", "Plush Bear"],
}
TICKET_CATEGORIES = [("Technical", 35), ("Billing", 28), ("Account", 16), ("Shipping", 13), ("Other", 8)]
# (priority, SLA target in hours, weight)
PRIORITIES = [("low", 72, 35), ("medium", 24, 40), ("high", 8, 18), ("urgent", 4, 7)]
# (city, sensors, mean temperature, seasonal amplitude, mean humidity)
CITIES = [("Berlin", 6, 10.5, 9.5, 72), ("Paris", 6, 12.5, 8.0, 74), ("London", 5, 11.5, 6.5, 79),
          ("Amsterdam", 4, 10.5, 7.0, 82), ("Madrid", 4, 15.5, 10.5, 55), ("Rome", 4, 16.0, 9.0, 66),
          ("Vienna", 3, 10.5, 10.5, 70), ("Oslo", 3, 6.0, 10.0, 76), ("Stockholm", 3, 7.0, 10.0, 75),
          ("Lisbon", 2, 17.5, 5.5, 70)]


def _one_of(values: Iterable[str]) -> str:
    return "one of " + ", ".join(values)


def _col(name: str, type_: str, description: str) -> dict[str, str]:
    return {"name": name, "type": type_, "description": description}


DATASETS: dict[str, dict[str, Any]] = {
    "ecommerce": {
        "title": "E-commerce orders",
        "description": "Orders, order line items and the product inventory of an online shop, 2023-2024.",
        "tables": [
            {"name": "orders", "columns": [
                _col("order_id", "BIGINT", "Order identifier (unique)."),
                _col("customer_id", "BIGINT", "Customer identifier; empty for guest checkouts."),
                _col("order_date", "DATE", "Day the order was placed, 2023-01-01 to 2024-12-31."),
                _col("total", "DOUBLE", "Order revenue (amount paid, sales value): sum of the line items' "
                     "quantity * price * (1 - discount), rounded to cents."),
                _col("status", "VARCHAR", "Order status: " + _one_of(["completed", "shipped", "cancelled", "pending"]) + "."),
                _col("returned", "BOOLEAN", "True when the order was returned (completed orders only)."),
            ]},
            {"name": "order_items", "columns": [
                _col("item_id", "BIGINT", "Line item identifier (unique)."),
                _col("order_id", "BIGINT", "The order this line belongs to (orders.order_id)."),
                _col("product_id", "BIGINT", "The product sold (inventory.product_id)."),
                _col("category", "VARCHAR", "Product category: " + _one_of(c for c, _ in PRODUCT_CATEGORIES) + "."),
                _col("quantity", "BIGINT", "Units sold on this line."),
                _col("price", "DOUBLE", "Unit price before discount."),
                _col("discount", "DOUBLE", "Discount fraction between 0 and 0.3."),
            ]},
            {"name": "inventory", "columns": [
                _col("product_id", "BIGINT", "Product identifier (unique)."),
                _col("name", "VARCHAR", "Product name (unique)."),
                _col("category", "VARCHAR", "Product category: " + _one_of(c for c, _ in PRODUCT_CATEGORIES) + "."),
                _col("stock", "BIGINT", "Units currently in stock."),
            ]},
        ],
        "relationships": [
            {"from_table": "order_items", "from_column": "order_id", "to_table": "orders", "to_column": "order_id"},
            {"from_table": "order_items", "from_column": "product_id", "to_table": "inventory", "to_column": "product_id"},
        ],
        "prompts": [
            "What is the total revenue by month?",
            "How many orders are there per status?",
            "What is the average order total for completed orders?",
            "Top 5 categories by quantity sold",
            "How many orders were returned in 2024?",
            "What is the total quantity sold per order status?",
            "Top 10 product names by quantity sold",
            "How many orders have a total of more than 500?",
            "Which products have fewer than 10 in stock?",
        ],
    },
    "support": {
        "title": "Support tickets",
        "description": "Customer support tickets with priority, resolution time, SLA outcome and CSAT, 2023-2024.",
        "tables": [
            {"name": "tickets", "columns": [
                _col("ticket_id", "BIGINT", "Ticket identifier (unique)."),
                _col("created_at", "TIMESTAMP", "When the ticket was opened."),
                _col("resolved_at", "TIMESTAMP", "When the ticket was resolved; empty while the ticket is still open."),
                _col("category", "VARCHAR", "Ticket topic: " + _one_of(c for c, _ in TICKET_CATEGORIES) + "."),
                _col("priority", "VARCHAR", "Ticket priority: " + _one_of(p[0] for p in PRIORITIES) + "."),
                _col("csat_score", "BIGINT", "Customer satisfaction rating from 1 (worst) to 5 (best); "
                     "empty when the customer did not answer the survey."),
                _col("sla_met", "BOOLEAN", "True when the ticket was resolved within the SLA target of its "
                     "priority; empty while open."),
            ]},
        ],
        "relationships": [],
        "prompts": [
            "How many tickets were created per month?",
            "What is the average CSAT score by priority?",
            "How many tickets are still open?",
            "How many tickets met the SLA per category?",
            "Top 3 categories by number of urgent tickets",
            "Average CSAT score per week in 2024",
            "Daily number of high priority tickets in December 2024",
            "How many tickets are there per category and priority?",
        ],
    },
    "sensors": {
        "title": "City sensor readings",
        "description": "Temperature and humidity readings from sensors in European cities, 2023-2024.",
        "tables": [
            {"name": "sensors", "columns": [
                _col("sensor_id", "BIGINT", "Sensor identifier."),
                _col("timestamp", "TIMESTAMP", "When the reading was taken."),
                _col("location", "VARCHAR", "City of the sensor: " + _one_of(c[0] for c in CITIES) + "."),
                _col("temp", "DOUBLE", "Air temperature in degrees Celsius; empty when the reading failed."),
                _col("humidity", "DOUBLE", "Relative humidity in percent; empty when the reading failed."),
                _col("anomaly_flag", "BOOLEAN", "True when the reading was flagged as an anomaly."),
            ]},
        ],
        "relationships": [],
        "prompts": [
            "What is the average temperature per location?",
            "What is the maximum humidity by month?",
            "How many anomalies were flagged per sensor?",
            "Top 5 locations with the highest average humidity",
            "Average temperature in Berlin by week",
            "How many readings have a temperature above 30?",
            "What is the minimum temperature recorded in Oslo in 2024?",
            "How many distinct sensors are there per location?",
        ],
    },
}


def registry_entry(dataset_id: str, version_hash: str) -> dict[str, Any]:
    """Return the registry.json entry of one dataset.

    Args:
        dataset_id: A key of DATASETS.
        version_hash: SHA-256 hex over the dataset's CSV bytes in table order.

    Returns:
        A JSON-ready dict with id, title, description, version_hash, tables, relationships, prompts.
    """
    spec = DATASETS[dataset_id]
    return {
        "id": dataset_id,
        "title": spec["title"],
        "description": spec["description"],
        "version_hash": version_hash,
        "tables": [
            {"name": t["name"], "file": f"{dataset_id}/{t['name']}.csv", "columns": [dict(c) for c in t["columns"]]}
            for t in spec["tables"]
        ],
        "relationships": [dict(r) for r in spec["relationships"]],
        "prompts": list(spec["prompts"]),
    }



def generate(out_dir: Path, scale: float = 1.0) -> Path:
    """Write the demo datasets and their registry.

    Args:
        out_dir: Directory to write into; created when missing. Existing files are overwritten.
        scale: Row-count factor; 1.0 gives about 20,000 orders, 10,000 tickets and 100,000
            readings. Fractions such as 0.05 give small datasets for tests.

    Returns:
        The path of the written `registry.json`.

    Raises:
        ValueError: When scale is not a positive finite number.
    """
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    out_dir = Path(out_dir)
    builders: dict[str, Callable[[random.Random, float], dict[str, list[Row]]]] = {
        "ecommerce": _ecommerce,
        "support": _support,
        "sensors": _sensors,
    }
    entries = []
    for index, (dataset_id, build) in enumerate(builders.items()):
        rows_by_table = build(random.Random(SEED + index), scale)
        spec = DATASETS[dataset_id]
        digest = hashlib.sha256()
        for table in spec["tables"]:
            path = out_dir / dataset_id / f"{table['name']}.csv"
            data = _csv_bytes([c["name"] for c in table["columns"]], rows_by_table[table["name"]])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            digest.update(data)
        entries.append(registry_entry(dataset_id, digest.hexdigest()))
    registry = out_dir / "registry.json"
    registry.write_text(json.dumps({"datasets": entries}, indent=2) + "\n", encoding="utf-8", newline="\n")
    return registry


def _csv_bytes(header: list[str], rows: Iterable[Row]) -> bytes:
    """Render rows as CSV: `\\n` line endings, None as an empty field, bools as true/false."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return f"{value:.2f}"
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(value, date):
            return value.isoformat()
        return str(value)

    lines: list[str] = []

    class _Sink:
        def write(self, text: str) -> None:
            lines.append(text)

    writer = csv.writer(_Sink(), lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(v) for v in row])
    return "".join(lines).encode("utf-8")


def _count(base: int, scale: float, minimum: int = 1) -> int:
    return max(minimum, round(base * scale))


def _seasonal_day(rng: random.Random, weights: list[float]) -> date:
    """Draw a day in 2023..2024 whose probability follows `weights` (one per day)."""
    return START + timedelta(days=rng.choices(range(DAYS), cum_weights=weights)[0])


def _cumulative(values: Iterable[float]) -> list[float]:
    total, out = 0.0, []
    for value in values:
        total += value
        out.append(total)
    return out


def _day_weights(month_factor: dict[int, float], growth: float, weekend: float) -> list[float]:
    """Cumulative per-day weights: monthly seasonality, yearly growth, weekend effect."""
    weights = []
    for offset in range(DAYS):
        day = START + timedelta(days=offset)
        trend = 1.0 + growth * offset / DAYS
        weights.append(month_factor.get(day.month, 1.0) * trend * (weekend if day.weekday() >= 5 else 1.0))
    return _cumulative(weights)


def _ecommerce(rng: random.Random, scale: float) -> dict[str, list[Row]]:
    products: list[Row] = []
    n_products = _count(300, scale, minimum=40)
    cats = PRODUCT_CATEGORIES
    for product_id in range(1, n_products + 1):
        # Cycle through categories first so that every category exists even at tiny scales.
        category = cats[product_id - 1][0] if product_id <= len(cats) else rng.choices(
            [c[0] for c in cats], weights=[c[1] for c in cats])[0]
        low, high = PRICE_RANGES[category]
        price = round(math.exp(rng.uniform(math.log(low), math.log(high))), 2)
        adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS[category])
        name = f"{adjective} {noun} {product_id:04d}"
        stock = 0 if rng.random() < 0.04 else int(rng.paretovariate(1.3) * 8)
        products.append([product_id, name, category, min(stock, 2000), price])
    popularity = [rng.paretovariate(1.1) for _ in products]
    cum_popularity = _cumulative(popularity)

    n_customers = _count(6000, scale, minimum=50)
    customer_weights = _cumulative(rng.paretovariate(1.5) for _ in range(n_customers))
    day_weights = _day_weights({1: 0.85, 2: 0.8, 3: 0.9, 7: 0.95, 8: 0.95, 11: 1.45, 12: 1.7}, 0.35, 1.2)

    orders: list[Row] = []
    items: list[Row] = []
    dates = sorted(_seasonal_day(rng, day_weights) for _ in range(_count(20000, scale, minimum=50)))
    for order_id, order_date in enumerate(dates, start=1):
        customer = None if rng.random() < 0.02 else rng.choices(range(1, n_customers + 1), cum_weights=customer_weights)[0]
        total = Decimal(0)
        for _ in range(rng.choices([1, 2, 3, 4, 5], weights=[45, 27, 15, 8, 5])[0]):
            product = products[rng.choices(range(len(products)), cum_weights=cum_popularity)[0]]
            price = round(product[4] * rng.choice([1.0, 1.0, 1.0, 0.95, 1.05]), 2)
            bulk = [20, 6, 3, 2, 1] if price > 100 else [66, 18, 7, 5, 4]
            quantity = rng.choices([1, 2, 3, 4, 6], weights=bulk)[0]
            november_sale = order_date.month == 11 and order_date.day >= 20
            discount = rng.choices([0.0, 0.05, 0.1, 0.2, 0.3], weights=[60, 15, 12, 8, 5 + (40 if november_sale else 0)])[0]
            items.append([len(items) + 1, order_id, product[0], product[2], quantity, price, discount])
            # Exact decimal arithmetic so that total is the true sum rounded half-up to cents.
            total += Decimal(quantity) * Decimal(f"{price:.2f}") * (1 - Decimal(f"{discount:.2f}"))
        status = _order_status(rng, order_date)
        returned = status == "completed" and rng.random() < (0.09 if order_date.month in (1, 12) else 0.05)
        orders.append([order_id, customer, order_date, float(total.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)), status, returned])
    return {"orders": orders, "order_items": items, "inventory": [p[:4] for p in products]}


def _order_status(rng: random.Random, order_date: date) -> str:
    """Recent orders are more often still pending or shipped."""
    days_before_end = (END - order_date).days
    if days_before_end < 7:
        weights = [20, 40, 5, 35]
    elif days_before_end < 30:
        weights = [60, 25, 7, 8]
    else:
        weights = [84, 6, 8, 2]
    return rng.choices(["completed", "shipped", "cancelled", "pending"], weights=weights)[0]


def _support(rng: random.Random, scale: float) -> dict[str, list[Row]]:
    day_weights = _day_weights({1: 1.3, 9: 1.1, 11: 1.25, 12: 1.35}, 0.5, 0.45)
    categories, priorities = TICKET_CATEGORIES, PRIORITIES
    created = sorted(
        datetime.combine(_seasonal_day(rng, day_weights), datetime.min.time())
        + timedelta(minutes=_work_minute(rng))
        for _ in range(_count(10000, scale, minimum=40))
    )
    end = datetime(2024, 12, 31, 23, 59, 59)
    tickets: list[Row] = []
    for ticket_id, created_at in enumerate(created, start=1):
        category = rng.choices([c[0] for c in categories], weights=[c[1] for c in categories])[0]
        priority, target_hours = rng.choices([p[:2] for p in priorities], weights=[p[2] for p in priorities])[0]
        hours = rng.lognormvariate(math.log(target_hours * 0.6), 0.9)
        resolved_at = created_at + timedelta(minutes=round(hours * 60) + 5)
        still_open = resolved_at > end or rng.random() < 0.015
        sla_met: bool | None = None
        csat: int | None = None
        if still_open:
            resolved_at_out = None
        else:
            resolved_at_out = resolved_at
            sla_met = hours <= target_hours
            if rng.random() < 0.7:
                mean = 4.3 if sla_met else 2.9
                csat = min(5, max(1, round(rng.gauss(mean, 1.0))))
        tickets.append([ticket_id, created_at, resolved_at_out, category, priority, csat, sla_met])
    return {"tickets": tickets}


def _work_minute(rng: random.Random) -> int:
    """Minute of the day, concentrated in office hours."""
    if rng.random() < 0.8:
        return min(1439, max(0, round(rng.gauss(13 * 60, 150))))
    return rng.randrange(1440)


def _sensors(rng: random.Random, scale: float) -> dict[str, list[Row]]:
    readings_per_sensor = _count(2500, scale, minimum=10)
    interval = (DAYS * 24 * 60) / readings_per_sensor
    rows: list[Row] = []
    sensor_id = 0
    for city, count, mean_temp, amplitude, humidity in CITIES:
        for _ in range(count):
            sensor_id += 1
            bias = rng.gauss(0, 0.6)
            for index in range(readings_per_sensor):
                minute = int(index * interval + rng.uniform(0, interval * 0.5))
                stamp = datetime(2023, 1, 1) + timedelta(minutes=minute)
                day_of_year = stamp.timetuple().tm_yday
                season = -math.cos(2 * math.pi * (day_of_year - 15) / 365.25)
                daily = -math.cos(2 * math.pi * (stamp.hour - 3) / 24)
                temp = mean_temp + amplitude * season + 3.5 * daily + bias + rng.gauss(0, 1.5)
                hum = humidity - 8 * daily - 5 * season + rng.gauss(0, 6)
                anomaly = rng.random() < 0.01
                if anomaly:
                    temp += rng.choice([-1, 1]) * rng.uniform(15, 25)
                    hum = rng.uniform(0, 100)
                temp_out = None if rng.random() < 0.005 else round(temp, 2)
                hum_out = None if rng.random() < 0.01 else round(min(100.0, max(5.0, hum)), 2)
                rows.append([sensor_id, stamp, city, temp_out, hum_out, anomaly])
    rows.sort(key=lambda r: (r[1], r[0]))
    return {"sensors": rows}


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: `python -m datasets.generator [--scale N] [--out DIR]`.

    Args:
        argv: Arguments without the program name; defaults to sys.argv[1:].

    Returns:
        The process exit code.
    """
    parser = argparse.ArgumentParser(description="Generate the demo datasets and registry.json.")
    parser.add_argument("--scale", type=float, default=1.0, help="row-count factor (default 1.0)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="output directory (default: the datasets/ folder)")
    args = parser.parse_args(argv)
    print(generate(args.out, args.scale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
