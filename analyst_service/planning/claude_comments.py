"""Comments of plan.proto and value.proto by full name: generated, do not edit.

Regenerate with `python -m analyst_service.planning.claude_comments_build` (a test fails when stale).
Enum values are keyed `<enum full name>.<VALUE_NAME>`.
"""

COMMENTS: dict[str, str] = {'csv_analyst.v1.Aggregation': 'Aggregation functions a select item may apply.',
 'csv_analyst.v1.Aggregation.AGGREGATION_AVG': 'AVG(column).',
 'csv_analyst.v1.Aggregation.AGGREGATION_COUNT': 'COUNT(column), or COUNT(*) when the column is '
                                                 '`*`.',
 'csv_analyst.v1.Aggregation.AGGREGATION_COUNT_DISTINCT': 'COUNT(DISTINCT column).',
 'csv_analyst.v1.Aggregation.AGGREGATION_MAX': 'MAX(column).',
 'csv_analyst.v1.Aggregation.AGGREGATION_MEDIAN': 'MEDIAN(column), the interpolated median.',
 'csv_analyst.v1.Aggregation.AGGREGATION_MIN': 'MIN(column).',
 'csv_analyst.v1.Aggregation.AGGREGATION_PERCENT': '100 * AGG FILTER (WHERE share_of) / AGG, where '
                                                   'AGG is COUNT(*) for column `*` and SUM(column) '
                                                   'otherwise: the percentage of rows (or of the '
                                                   "column's total) matching share_of.",
 'csv_analyst.v1.Aggregation.AGGREGATION_RANGE': 'MAX(column) - MIN(column): the spread of the '
                                                 'values.',
 'csv_analyst.v1.Aggregation.AGGREGATION_STDDEV': 'STDDEV_SAMP(column): the sample standard '
                                                  'deviation.',
 'csv_analyst.v1.Aggregation.AGGREGATION_SUM': 'SUM(column).',
 'csv_analyst.v1.Aggregation.AGGREGATION_UNSPECIFIED': 'No aggregation: the plain column value.',
 'csv_analyst.v1.Aggregation.AGGREGATION_VARIANCE': 'VAR_SAMP(column): the sample variance.',
 'csv_analyst.v1.DurationUnit': 'The unit of a difference between two dates or timestamps '
                                '(SelectItem.minus_column).',
 'csv_analyst.v1.DurationUnit.DURATION_UNIT_DAYS': 'Days.',
 'csv_analyst.v1.DurationUnit.DURATION_UNIT_HOURS': 'Hours.',
 'csv_analyst.v1.DurationUnit.DURATION_UNIT_MINUTES': 'Minutes.',
 'csv_analyst.v1.DurationUnit.DURATION_UNIT_SECONDS': 'Seconds.',
 'csv_analyst.v1.DurationUnit.DURATION_UNIT_UNSPECIFIED': 'Days (the default).',
 'csv_analyst.v1.DurationUnit.DURATION_UNIT_WEEKS': 'Weeks (7 days).',
 'csv_analyst.v1.Filter': 'A row filter.',
 'csv_analyst.v1.Filter.as_number': 'Compare the column read as a number (see '
                                    'SelectItem.as_number).',
 'csv_analyst.v1.Filter.as_year': "Compare the column's year (see SelectItem.as_year).",
 'csv_analyst.v1.Filter.column': 'Column reference.',
 'csv_analyst.v1.Filter.op': 'Operator.',
 'csv_analyst.v1.Filter.values': 'Operands; the count depends on the operator.',
 'csv_analyst.v1.FilterOperator': 'Comparison operators for filters.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_BETWEEN': 'column BETWEEN values[0] AND values[1].',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_CONTAINS': 'Case-insensitive substring match.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_ENDSWITH': 'Case-insensitive suffix match.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_EQ': 'column = value.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_GE': 'column >= value.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_GT': 'column > value.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_IN': 'column IN (values...), at least one value.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_IS_NULL': 'column IS NULL; takes no values.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_LE': 'column <= value.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_LT': 'column < value.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_NE': 'column <> value.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_NOT_NULL': 'column IS NOT NULL; takes no values.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_STARTSWITH': 'Case-insensitive prefix match.',
 'csv_analyst.v1.FilterOperator.FILTER_OPERATOR_UNSPECIFIED': 'Invalid.',
 'csv_analyst.v1.GroupBy': 'A grouping key.',
 'csv_analyst.v1.GroupBy.bucket': 'Optional date bucketing of the column.',
 'csv_analyst.v1.GroupBy.column': 'Column reference.',
 'csv_analyst.v1.Join': 'Joins `table` to the plan along the declared relationship that links it '
                        'to a table already present.',
 'csv_analyst.v1.Join.table': 'The table to join.',
 'csv_analyst.v1.Join.type': 'INNER by default.',
 'csv_analyst.v1.JoinType': 'Join type.',
 'csv_analyst.v1.JoinType.JOIN_TYPE_INNER': 'INNER JOIN.',
 'csv_analyst.v1.JoinType.JOIN_TYPE_LEFT': 'LEFT JOIN from the tables already joined.',
 'csv_analyst.v1.JoinType.JOIN_TYPE_UNSPECIFIED': 'Treated as INNER.',
 'csv_analyst.v1.OrderBy': 'A sort key.',
 'csv_analyst.v1.OrderBy.as_number': 'Sort by the column read as a number (see '
                                     'SelectItem.as_number); key must name a column.',
 'csv_analyst.v1.OrderBy.as_year': "Sort by the column's year (see SelectItem.as_year).",
 'csv_analyst.v1.OrderBy.descending': 'Sort descending.',
 'csv_analyst.v1.OrderBy.file_order': "Sort by the row's position in the base table's file (key "
                                      'must be empty); only in plans that do not aggregate. "The '
                                      'first/last row", "the row before X".',
 'csv_analyst.v1.OrderBy.key': 'An output alias or a column reference.',
 'csv_analyst.v1.Plan': 'A structured query plan. Planners propose plans; the analyst service '
                        'validates each plan against the dataset schema and compiles it to one '
                        'DuckDB SELECT statement. Column references are `column` (base table) or '
                        '`table.column`.',
 'csv_analyst.v1.Plan.anchor': 'Select rows by their position relative to an anchor row of the '
                               'base table ("the row before X", "the next Y after X"); unset for '
                               'ordinary plans.',
 'csv_analyst.v1.Plan.base_table': 'The table in the FROM clause.',
 'csv_analyst.v1.Plan.dataset_id': 'The dataset the plan reads.',
 'csv_analyst.v1.Plan.explanation': 'One-sentence explanation of what the plan computes, generated '
                                    'from the plan itself.',
 'csv_analyst.v1.Plan.filters': 'Row filters, combined with AND.',
 'csv_analyst.v1.Plan.group_by': 'Grouping keys.',
 'csv_analyst.v1.Plan.joins': 'Joins, each along a declared relationship.',
 'csv_analyst.v1.Plan.limit': 'Maximum rows. 0 means the default of 200; values above the service '
                              'cap are rejected.',
 'csv_analyst.v1.Plan.notes': 'Free-text notes from the planner (assumptions, ambiguities).',
 'csv_analyst.v1.Plan.order_by': 'Sort keys, applied in order.',
 'csv_analyst.v1.Plan.select': 'Output columns. Empty means every column of the base table.',
 'csv_analyst.v1.RowAnchor': 'Locates rows relative to an anchor row, in file order of the base '
                             'table.',
 'csv_analyst.v1.RowAnchor.match': 'Filters (ANDed) that find the anchor; the first matching row '
                                   'in file order is the anchor.',
 'csv_analyst.v1.RowAnchor.nearest': 'Instead of exactly `offset` rows away: every row on the '
                                     "offset's side of the anchor that passes the plan's filters, "
                                     'nearest first (combine with limit for "the next N").',
 'csv_analyst.v1.RowAnchor.offset': 'Which row relative to the anchor: -1 the row before it, +1 '
                                    'the row after it, and so on. With nearest, only the direction '
                                    'counts.',
 'csv_analyst.v1.SelectItem': 'One output column.',
 'csv_analyst.v1.SelectItem.aggregation': 'Aggregation applied to the column.',
 'csv_analyst.v1.SelectItem.alias': 'Output name. Defaults to the column name, or '
                                    '`{aggregation}_{column}`.',
 'csv_analyst.v1.SelectItem.as_number': 'Read a text column as a number: the first number in the '
                                        'cell, ignoring thousands separators ("$1,234.5 million" '
                                        'reads 1234.5); NULL when the cell holds none. No-op on '
                                        'numbers.',
 'csv_analyst.v1.SelectItem.as_year': "Read the column's year: year(column) for dates; for text, "
                                      'the first four-digit year in the cell ("10 August 1975" '
                                      'reads 1975); NULL when there is none.',
 'csv_analyst.v1.SelectItem.bucket': 'Truncate a date/timestamp column before selecting (it must '
                                     'then appear in group_by with the same bucket when '
                                     'aggregating).',
 'csv_analyst.v1.SelectItem.column': 'Column reference, or `*` with AGGREGATION_COUNT.',
 'csv_analyst.v1.SelectItem.duration_unit': 'With minus_column on dates or timestamps: the unit of '
                                            'the difference (days when unspecified).',
 'csv_analyst.v1.SelectItem.minus_column': 'Subtract this column from `column` first: for two DATE '
                                           'columns, the number of days between them '
                                           "(date_diff('day', minus_column, column)); when either "
                                           'is a timestamp, fractional days (seconds / 86400); for '
                                           'two numbers, the difference.',
 'csv_analyst.v1.SelectItem.ratio_of': 'With AGGREGATION_PERCENT and no share_of: 100 * '
                                       "SUM(column) / SUM(ratio_of), the column's total as a "
                                       "percentage of another column's total.",
 'csv_analyst.v1.SelectItem.share_of': 'With AGGREGATION_PERCENT: the condition whose share is '
                                       'computed (filters ANDed).',
 'csv_analyst.v1.TimeBucket': 'Date truncation units for grouping a date or timestamp column.',
 'csv_analyst.v1.TimeBucket.TIME_BUCKET_DAY': "date_trunc('day', ...).",
 'csv_analyst.v1.TimeBucket.TIME_BUCKET_DAY_OF_WEEK': 'A calendar part: isodow(...), the day of '
                                                      'the week 1 (Monday) to 7 (Sunday).',
 'csv_analyst.v1.TimeBucket.TIME_BUCKET_HOUR': "date_trunc('hour', ...).",
 'csv_analyst.v1.TimeBucket.TIME_BUCKET_HOUR_OF_DAY': 'A calendar part, not a timeline bucket: '
                                                      'hour(...), the hour of the day 0-23 (every '
                                                      "day's 9 o'clock together).",
 'csv_analyst.v1.TimeBucket.TIME_BUCKET_MONTH': "date_trunc('month', ...).",
 'csv_analyst.v1.TimeBucket.TIME_BUCKET_MONTH_OF_YEAR': 'A calendar part: month(...), the month of '
                                                        "the year 1-12 (every year's Januaries "
                                                        'together).',
 'csv_analyst.v1.TimeBucket.TIME_BUCKET_QUARTER': "date_trunc('quarter', ...).",
 'csv_analyst.v1.TimeBucket.TIME_BUCKET_UNSPECIFIED': 'No bucketing.',
 'csv_analyst.v1.TimeBucket.TIME_BUCKET_WEEK': "date_trunc('week', ...), weeks start on Monday.",
 'csv_analyst.v1.TimeBucket.TIME_BUCKET_YEAR': 'year(...): the year as an integer, such as 2024.',
 'csv_analyst.v1.Value': 'A typed scalar: a literal in a plan filter or one cell of a result '
                         'table. Typed (not google.protobuf.Struct) so that integers stay integers '
                         'across languages.',
 'csv_analyst.v1.Value.bool_value': 'A boolean.',
 'csv_analyst.v1.Value.double_value': 'A double-precision number (DuckDB DECIMAL and FLOAT become '
                                      'doubles).',
 'csv_analyst.v1.Value.int_value': 'A 64-bit signed integer.',
 'csv_analyst.v1.Value.null_value': 'SQL NULL.',
 'csv_analyst.v1.Value.string_value': 'Text; dates and timestamps are ISO 8601 text.'}
