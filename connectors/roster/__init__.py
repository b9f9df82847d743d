"""HR roster files (CSV, XLSX) → :class:`syncd.roster.Table`."""

from connectors.roster.files import read_table

__all__ = ["read_table"]
