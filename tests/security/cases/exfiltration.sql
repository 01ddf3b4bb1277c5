-- The exfiltration heuristic (issue 3, layer 5) through AnalystService.SubmitRun on ecommerce:
-- a non-aggregated query showing most columns of a table row by row without a LIMIT of at most
-- WIDE_QUERY_MAX_LIMIT rows is refused with a suggestion. Must-allow neighbours are in
-- must_allow.sql (select_star_with_limit, two_columns_no_limit, ...).

-- case: select_star_no_limit
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
SELECT * FROM orders

-- case: select_star_limit_above_threshold
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
SELECT * FROM orders LIMIT 1000000

-- case: most_columns_listed
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
SELECT order_id, customer_id, order_date, total FROM orders

-- case: star_through_cte
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
WITH t AS (SELECT * FROM order_items) SELECT * FROM t

-- case: star_through_derived_table
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
SELECT x.* FROM (SELECT * FROM inventory) x

-- case: whole_row_struct
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
SELECT orders FROM orders

-- case: concat_every_column
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
SELECT concat_ws('|', order_id, customer_id, order_date, total, status, returned) AS line FROM orders

-- case: string_agg_whole_table_in_one_cell
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
SELECT string_agg(concat_ws('|', order_id, customer_id, order_date, total), ';') AS dump FROM orders LIMIT 1

-- case: list_of_rows
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
SELECT list(orders) AS everything FROM orders

-- case: union_of_dumps
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
SELECT * FROM orders UNION ALL SELECT * FROM orders

-- case: join_star_of_one_side
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
SELECT oi.* FROM order_items oi JOIN orders o ON o.order_id = oi.order_id WHERE o.status = 'completed'

-- case: group_by_all_columns
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
SELECT product_id, name, category, stock, count(*) AS n FROM inventory GROUP BY ALL

-- case: limit_as_expression
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: exfiltration
SELECT * FROM orders LIMIT 10 * 100000
