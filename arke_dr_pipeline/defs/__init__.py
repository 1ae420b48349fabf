"""Dagster only: the Definitions object loaded by workspace.yaml."""

from .definitions import defs

__all__ = ["defs"]
