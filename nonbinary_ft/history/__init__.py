"""What past sweeps leave for later ones, in formats shared by the search and the replay.

- :mod:`.table`: a task's recorded learning curves (Parquet, versioned), the replay's
  table and a past sweep's export;
- :mod:`.store`: where a sweep finds its history: the prior shipped with the package, the
  user's own store of finished sweeps, and the tracking server's tagged sweeps.
"""

from nonbinary_ft.history.table import (
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
