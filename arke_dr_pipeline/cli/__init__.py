"""`arke-dr`: every operation from a shell, with Dagster gone entirely; one module per verb group."""

from . import backup, node, offsite, restore, verify  # noqa: F401  (each registers its verbs on `main`)
from .base import EXIT_CODES, exit_code, main

__all__ = ["EXIT_CODES", "exit_code", "main"]
