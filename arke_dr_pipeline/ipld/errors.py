"""The error every codec reader raises."""

from __future__ import annotations

from ..errors import ArkeDrError


class BlockDecodeError(ArkeDrError, ValueError):
    """A block whose bytes do not decode under the codec its CID names."""
