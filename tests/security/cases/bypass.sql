-- Policy bypass: statements sent straight to RunnerService.Execute (no SQL policy in front) over
-- the ecommerce orders table. The DuckDB lock-down (layer 3) and the sandbox (layer 4) must hold
-- on their own: no file outside the dataset, no network, no writes, no config change, no
-- extension install. `allow` here means it ran but could do no harm (the in-memory copy of the
-- tables belongs to this one sandbox and dies with it); `not-in-result` lists what must not show.

-- case: read_csv_passwd
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM read_csv('/etc/passwd')

-- case: read_text_passwd
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM read_text('/etc/passwd')

-- case: read_blob_passwd
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM read_blob('/etc/passwd')

-- case: read_parquet_passwd
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM read_parquet('/etc/passwd')

-- case: read_json_passwd
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM read_json('/etc/passwd')

-- case: sniff_csv_passwd
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM sniff_csv('/etc/passwd')

-- case: path_traversal_from_data
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM read_text('/data/../etc/passwd')

-- case: path_traversal_through_file
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM read_text('/data/t0.csv/../../etc/passwd')

-- case: proc_environ
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM read_text('/proc/self/environ')

-- case: proc_init_cmdline
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM read_text('/proc/1/cmdline')

-- case: glob_root
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM glob('/*')

-- case: file_as_table
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM '/etc/passwd'

-- case: http_read
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM read_csv('http://127.0.0.1:1/x.csv')

-- case: https_metadata_endpoint
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT * FROM read_text('http://169.254.169.254/latest/meta-data/')

-- case: copy_over_dataset
-- expect: fail
-- layer: sandbox
-- code: QUERY_ERROR
COPY orders TO '/data/t0.csv'

-- case: copy_new_file_in_data
-- expect: fail
-- layer: sandbox
-- code: QUERY_ERROR
COPY (SELECT 1 AS x) TO '/data/evil.csv'

-- case: copy_to_tmp
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
COPY orders TO '/tmp/x.csv'

-- case: export_database
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
EXPORT DATABASE '/tmp/exp'

-- case: attach_file
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
ATTACH '/tmp/evil.db' AS evil

-- case: install_extension
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
INSTALL httpfs

-- case: load_extension
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
LOAD httpfs

-- case: create_s3_secret
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
CREATE SECRET s (TYPE S3, KEY_ID 'a', SECRET 'b')

-- case: enable_external_access
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SET enable_external_access = true

-- case: unlock_configuration
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SET lock_configuration = false

-- case: raise_memory_limit
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SET memory_limit = '100GB'

-- case: widen_allowed_directories
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SET allowed_directories = ['/']

-- case: reset_external_access
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
RESET enable_external_access

-- case: more_threads
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SET threads = 64

-- case: move_temp_directory
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SET temp_directory = '/data'

-- case: getenv
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT getenv('CSV_ANALYST_RED_TEAM_TOKEN') AS v

-- case: second_statement_reads_file
-- expect: fail
-- layer: duckdb
-- code: QUERY_ERROR
SELECT 1; SELECT * FROM read_text('/etc/passwd')

-- case: sleep_ignores_duckdb_timeout
-- expect: fail
-- layer: sandbox
-- code: RUNNER_TIMEOUT
SELECT sleep_ms(60000)

-- case: repeat_past_memory_limit
-- expect: fail
-- layer: sandbox
-- code: RUNNER_RESOURCE_EXCEEDED|RUNNER_TIMEOUT
SELECT length(repeat('x', 2000000000)) AS n

-- case: settings_show_only_sandbox_paths
-- expect: allow
-- layer: sandbox
-- not-in-result: /work
-- not-in-result: /root
-- not-in-result: /tmp/pytest
SELECT name, value FROM duckdb_settings() WHERE name IN ('allowed_directories', 'temp_directory', 'home_directory', 'extension_directory', 'secret_directory')

-- case: delete_touches_only_the_sandbox_copy
-- expect: allow
-- layer: sandbox
DELETE FROM orders

-- case: drop_touches_only_the_sandbox_copy
-- expect: allow
-- layer: sandbox
DROP TABLE orders
