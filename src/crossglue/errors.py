"""The one exception type the project raises for bad input and impossible requests.

Messages name the file, the record (line, row, key) and what was expected, so that a
Snakemake script can print them as they are, without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class CrossglueError(Exception):
    """Bad input or configuration, explained in the message itself."""


def where(path: str | Path, line: int | None = None) -> str:
    """Format a location as ``path`` or ``path:line`` (1-based line) for error messages."""
    return f"{path}:{line}" if line is not None else f"{path}"
