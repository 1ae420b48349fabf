"""Plumbing the operations share: configuration, files written whole, locks, spill sets, streams, progress."""
