"""Bringing the archive back: a whole restore, chosen entities, lost blocks repaired, the drill, downloads from S3."""
