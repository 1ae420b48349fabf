"""The one base of every error an operation reports as one line.

Each layer keeps its own classes (a bad CID, a malformed CAR, a node that
does not answer, a refused restore), all of them `ArkeDrError`, so the CLI
and the Dagster ops catch one class and print its message, and anything
else is a bug that deserves its traceback.
"""


class ArkeDrError(Exception):
    """An operation refused or failed; the message says why, in one line."""


class BadInput(ArkeDrError, ValueError):
    """An argument or setting that cannot be used as given (a URL, a PI, a shape, a count)."""
