"""One error type for everything the node can say no to."""

from __future__ import annotations

from ..errors import ArkeDrError
from ..ipld.cid import cid_str


class KuboError(ArkeDrError, RuntimeError):
    """A failed RPC call; the message names the call, its argument and Kubo's words."""

    def __init__(self, call: str, arg: str | bytes | None, message: str, *, code: int | None = None):
        self.call = call
        self.arg = cid_str(arg) if isinstance(arg, bytes) else arg
        self.kubo_message = message
        self.code = code
        where = f"{call} {self.arg}" if arg else call
        super().__init__(f"{where}: {message}")


class KuboUnreachable(KuboError):
    """The node did not answer at all (refused, timed out, not Kubo)."""
