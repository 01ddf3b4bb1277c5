-- Resource bombs and run-time failures through AnalystService.SubmitRun on ecommerce: statements
-- the SQL policy lets through (they are read-only SELECTs) that DuckDB's limits or the sandbox
-- (wall-clock kill, RLIMIT_AS, cgroup memory) must end within the red-team limits (3 s, 256 MB).

-- case: cross_join_four_way
-- expect: fail
-- layer: duckdb
-- code: RUNNER_TIMEOUT
SELECT count(*) AS n FROM orders a, orders b, orders c, orders d

-- case: cross_join_sort
-- expect: fail
-- layer: duckdb
-- code: RUNNER_TIMEOUT|RUNNER_RESOURCE_EXCEEDED
SELECT a.order_id FROM orders a, orders b, orders c ORDER BY a.total * b.total - c.total LIMIT 5

-- case: recursive_cte_unbounded
-- expect: fail
-- layer: duckdb
-- code: RUNNER_TIMEOUT|RUNNER_RESOURCE_EXCEEDED
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) AS n FROM r

-- case: recursive_cte_huge_range
-- expect: fail
-- layer: duckdb
-- code: RUNNER_TIMEOUT|RUNNER_RESOURCE_EXCEEDED
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000000000) SELECT sum(n) AS s FROM r

-- case: recursive_cte_string_doubling
-- expect: fail
-- layer: sandbox
-- code: RUNNER_TIMEOUT|RUNNER_RESOURCE_EXCEEDED
WITH RECURSIVE r(s, i) AS (SELECT 'xxxxxxxx', 1 UNION ALL SELECT s || s, i + 1 FROM r WHERE i < 40) SELECT max(length(s)) AS l FROM r

-- case: range_via_cross_join_cte
-- expect: fail
-- layer: duckdb
-- code: RUNNER_TIMEOUT|RUNNER_RESOURCE_EXCEEDED
WITH digits AS (SELECT order_id FROM orders), big AS (SELECT a.order_id * 1000000 + b.order_id * 1000 + c.order_id AS n FROM digits a, digits b, digits c)
SELECT sum(n) AS s FROM big, digits

-- case: repeat_two_gigabytes
-- expect: fail
-- layer: sandbox
-- code: RUNNER_RESOURCE_EXCEEDED|RUNNER_TIMEOUT
SELECT length(repeat('x', 2000000000)) AS n

-- case: repeat_per_row
-- expect: fail
-- layer: sandbox
-- code: RUNNER_RESOURCE_EXCEEDED|RUNNER_TIMEOUT
SELECT sum(length(repeat(status, 50000000))) AS n FROM orders

-- case: string_agg_explosion
-- expect: fail
-- layer: sandbox
-- code: RUNNER_RESOURCE_EXCEEDED|RUNNER_TIMEOUT
SELECT length(string_agg(repeat(a.status, 2000), ',')) AS n FROM orders a, orders b

-- case: list_explosion
-- expect: fail
-- layer: sandbox
-- code: RUNNER_RESOURCE_EXCEEDED|RUNNER_TIMEOUT
SELECT length(array_agg(repeat(b.category, 1000))) AS n FROM orders a, order_items b

-- case: unknown_column
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT no_such_column FROM orders LIMIT 1

-- case: bad_cast
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT CAST(status AS INTEGER) AS n FROM orders LIMIT 5

-- case: lateral_unnest_of_huge_list_refused_by_types
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT order_id + 'x' AS broken FROM orders LIMIT 1
