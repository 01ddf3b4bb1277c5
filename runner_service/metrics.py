"""Prometheus metrics of the runner service: queue depth, admission refusals, sandbox starts by
executor, warm-pool size, hits and misses, read-aheads, and materialised-copy hits and misses."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

QUEUE_DEPTH = Gauge("csv_analyst_runner_queue_depth", "Runs admitted and waiting for a sandbox slot")
RUNNING = Gauge("csv_analyst_runner_running", "Runs holding a sandbox slot")
ADMISSION_REJECTIONS = Counter("csv_analyst_runner_admission_rejections_total", "Runs refused because the queue was full")
SANDBOX_STARTS = Counter("csv_analyst_sandbox_starts_total", "Sandboxes started, warm or cold", ["executor"])
WARM_POOL = Counter("csv_analyst_warm_pool_total", "Runs that found a warm sandbox (hit) or started one (miss)",
                    ["result"])
WARM_POOL_SIZE = Gauge("csv_analyst_warm_pool_size", "Warm sandboxes waiting for a run")
READ_AHEADS = Counter("csv_analyst_warm_read_aheads_total",
                      "Warm sandboxes that read their dataset ahead during a quiet spell", ["executor"])
MATERIALISED = Counter("csv_analyst_materialised_total",
                       "Runs that read a materialised copy (hit) or the CSV files (miss)", ["result"])
