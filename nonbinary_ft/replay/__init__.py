"""The replay benchmark: recorded learning curves of a grid, and search strategies replayed
on them in simulated time.

- :mod:`.table`: a task's table (Parquet, versioned) and reading it back;
- :mod:`.collect`: ``nbft bench collect``, training a grid on Ray with every epoch recorded.
"""

from nonbinary_ft.replay.table import (
    TABLE_FORMAT,
    TableError,
    TaskEvidence,
    TaskTable,
    read_table,
    settings_key,
    write_table,
)

__all__ = [
    "TABLE_FORMAT",
    "TableError",
    "TaskEvidence",
    "TaskTable",
    "read_table",
    "settings_key",
    "write_table",
]
