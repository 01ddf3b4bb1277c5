"""Regenerate the README's screenshots: `.venv/bin/python docs/screenshots/generate.py`.

Starts `csv-analyst serve` (offline planner, bwrap sandboxes) with its capsules, uploads and caches in a
temporary directory and on free ports, drives the chat UI in headless Debian Chromium (Playwright,
executable /usr/bin/chromium), and writes:

- docs/screenshots/chat.png: two answers about the `ecommerce` demo, each with its table and chart.
- docs/screenshots/upload.png: an uploaded CSV's ingestion report (with the problems found) and an
  answer about it.

The tests never write these files; run this script after a change to what the UI looks like.
"""

from __future__ import annotations

import csv
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1100}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(url: str, server: subprocess.Popen[bytes], seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"csv-analyst serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the UI at {url} did not come up in {seconds:.0f} s")


def _sales_csv(path: Path) -> None:
    """A spreadsheet export as many are: semicolons, decimal commas and an empty column (the report
    lists them under "Problems found")."""
    regions = ["North", "South", "East", "West"]
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, delimiter=";")
        writer.writerow(["sale_date", "region", "units", "revenue", "notes"])
        for i in range(360):
            revenue = f"{round(100 + (i * 37.37) % 900, 2):.2f}".replace(".", ",")
            writer.writerow([(date(2024, 1, 1) + timedelta(days=i)).isoformat(), regions[i % 4], 1 + i % 7,
                             revenue, ""])


def _ask(page: Page, question: str) -> None:
    tables = page.locator("#chat table.result-table")
    count = tables.count()
    page.locator("#question textarea").fill(question)
    page.locator("#ask-button").click()
    expect(tables).to_have_count(count + 1)


def _chat_shot(page: Page, url: str) -> None:
    page.goto(url)
    dropdown = page.locator("#dataset-dropdown input")
    expect(dropdown).to_have_value(re.compile(r"\S"))
    dropdown.click()
    page.get_by_role("option", name=re.compile(r"\(ecommerce\)")).click()
    expect(dropdown).to_have_value(re.compile(r"\(ecommerce\)"))
    expect(page.locator("#prompts button").first).to_have_text("What is the total revenue by month?")
    _ask(page, "What is the total revenue by month?")
    _ask(page, "How many orders are there per status?")
    page.locator("#chat [data-testid=user]").first.scroll_into_view_if_needed()
    page.screenshot(path=str(OUT / "chat.png"), full_page=True)


def _upload_shot(page: Page, url: str, work: Path) -> None:
    page.goto(url)
    expect(page.locator("#dataset-dropdown input")).to_have_value(re.compile(r"\S"))
    _sales_csv(work / "sales.csv")
    page.locator("#upload input[type=file]").set_input_files([str(work / "sales.csv")])
    expect(page.locator("#upload-report")).to_contain_text("sales: 360 rows")
    expect(page.locator("#upload-report")).to_contain_text("Problems found (3)")
    page.locator("#prompts button", has_text="What is the total revenue per region?").click()
    expect(page.locator("#chat table.result-table")).to_have_count(1)
    page.screenshot(path=str(OUT / "upload.png"), full_page=True)


def main() -> int:
    """Start the stack, take the screenshots, stop the stack."""
    with tempfile.TemporaryDirectory(prefix="csv-analyst-screens-") as temp:
        work = Path(temp)
        ui_port = _free_port()
        command = [str(Path(sys.executable).parent / "csv-analyst"), "serve", "--datasets-dir", str(ROOT / "datasets"),
                   "--capsule-db", str(work / "capsules.sqlite3"), "--upload-dir", str(work / "uploads"),
                   "--cache-dir", str(work / "cache"), "--planner", "offline", "--analyst-port", str(_free_port()),
                   "--runner-port", str(_free_port()), "--ui-port", str(ui_port)]
        server = subprocess.Popen(command, env={**os.environ, "HOME": str(work)})
        try:
            url = f"http://127.0.0.1:{ui_port}"
            _wait_for(url, server)
            expect.set_options(timeout=120_000)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    page = browser.new_page(viewport=VIEWPORT)
                    page.set_default_timeout(120_000)
                    _chat_shot(page, url)
                    _upload_shot(page, url, work)
                finally:
                    browser.close()
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    print(f"wrote {OUT / 'chat.png'} and {OUT / 'upload.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
