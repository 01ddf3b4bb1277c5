-- Must-allow traps through AnalystService.SubmitRun on the ecommerce dataset: statements that
-- look dangerous to a keyword blocklist but are ordinary read-only questions. A false positive
-- here is a bug just like a bypass.

-- case: keyword_in_string_delete
-- expect: allow
SELECT count(*) AS n FROM orders WHERE status = 'DELETE FROM orders'

-- case: keyword_in_string_drop_copy
-- expect: allow
SELECT count(*) AS n FROM orders WHERE status IN ('DROP TABLE orders; --', 'COPY orders TO ''/tmp/x''')

-- case: path_in_string_literal
-- expect: allow
SELECT count(*) AS n FROM orders WHERE status = '/etc/passwd'

-- case: function_name_in_string
-- expect: allow
SELECT 'read_csv(''/etc/passwd'')' AS looks_like_a_call, count(*) AS n FROM orders

-- case: line_comment_with_attack
-- expect: allow
-- ; ATTACH '/tmp/evil.db'; INSTALL httpfs;
SELECT count(*) AS n FROM orders -- ; DELETE FROM orders

-- case: block_comment_with_attack
-- expect: allow
SELECT /* ; COPY orders TO '/data/t0.csv'; */ status, count(*) AS n FROM orders GROUP BY status

-- case: quoted_alias_with_keywords
-- expect: allow
SELECT status AS "drop table orders", count(*) AS "delete" FROM orders GROUP BY status

-- case: alias_named_like_functions
-- expect: allow
SELECT sum(total) AS read_csv, avg(total) AS getenv, max(total) AS sleep_ms FROM orders

-- case: column_names_with_keywords
-- expect: allow
SELECT returned, count(*) AS n FROM orders GROUP BY returned

-- case: cte_named_like_table_function
-- expect: allow
WITH read_text AS (SELECT status, count(*) AS n FROM orders GROUP BY status) SELECT * FROM read_text

-- case: cte_shadowing_dataset_table
-- expect: allow
WITH orders AS (SELECT status FROM orders WHERE total > 100) SELECT status, count(*) AS n FROM orders GROUP BY status

-- case: recursive_cte_bounded
-- expect: allow
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT sum(n) AS s FROM r

-- case: join_three_tables
-- expect: allow
SELECT i.category, sum(oi.quantity * oi.price) AS revenue
FROM orders o JOIN order_items oi ON o.order_id = oi.order_id JOIN inventory i ON i.product_id = oi.product_id
GROUP BY i.category ORDER BY revenue DESC

-- case: window_functions
-- expect: allow
SELECT order_id, total, rank() OVER (ORDER BY total DESC) AS r FROM orders QUALIFY r <= 5

-- case: running_sum
-- expect: allow
SELECT order_date, sum(total) OVER (ORDER BY order_date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS running
FROM orders LIMIT 20

-- case: union_all_bounded
-- expect: allow
SELECT 'orders' AS t, count(*) AS n FROM orders UNION ALL SELECT 'items', count(*) FROM order_items

-- case: except_intersect
-- expect: allow
SELECT product_id FROM inventory EXCEPT SELECT product_id FROM order_items

-- case: correlated_subquery
-- expect: allow
SELECT o.order_id, (SELECT count(*) FROM order_items oi WHERE oi.order_id = o.order_id) AS items
FROM orders o ORDER BY items DESC LIMIT 5

-- case: exists_subquery
-- expect: allow
SELECT count(*) AS n FROM orders o WHERE EXISTS (SELECT 1 FROM order_items oi WHERE oi.order_id = o.order_id AND oi.discount > 0)

-- case: date_functions
-- expect: allow
SELECT date_trunc('month', CAST(order_date AS DATE)) AS m, count(*) AS n FROM orders GROUP BY 1 ORDER BY 1

-- case: string_functions
-- expect: allow
SELECT upper(status) AS s, length(status) AS l, replace(status, 'e', '3') AS r FROM orders GROUP BY ALL ORDER BY ALL

-- case: string_agg_one_column
-- expect: allow
SELECT string_agg(DISTINCT status, ', ' ORDER BY status) AS statuses FROM orders

-- case: repeat_small
-- expect: allow
SELECT repeat('-', 20) AS rule, count(*) AS n FROM orders

-- case: select_star_with_limit
-- expect: allow
SELECT * FROM orders LIMIT 10

-- case: select_star_limit_at_threshold
-- expect: allow
SELECT * FROM order_items ORDER BY item_id LIMIT 10000

-- case: star_in_bounded_subquery
-- expect: allow
SELECT * FROM (SELECT * FROM orders ORDER BY total DESC LIMIT 5) top

-- case: two_columns_no_limit
-- expect: allow
SELECT order_id, total FROM orders WHERE total > 500

-- case: count_star_over_cte_star
-- expect: allow
WITH everything AS (SELECT * FROM orders) SELECT count(*) AS n, avg(total) AS avg_total FROM everything

-- case: aggregate_per_group_many_aggregates
-- expect: allow
SELECT status, count(*) AS n, sum(total) AS s, avg(total) AS a, min(order_date) AS first, max(order_date) AS last
FROM orders GROUP BY status

-- case: cross_join_tiny
-- expect: allow
SELECT count(*) AS n FROM inventory a, inventory b

-- case: trailing_semicolon_and_whitespace
-- expect: allow
  select count(*) as n from ORDERS ;  

-- case: unicode_literal
-- expect: allow
SELECT count(*) AS n FROM orders WHERE status = 'café ☕ 注文'

-- case: values_list
-- expect: allow
SELECT v.s, count(o.order_id) AS n FROM (VALUES ('completed'), ('pending')) v(s) LEFT JOIN orders o ON o.status = v.s GROUP BY v.s
