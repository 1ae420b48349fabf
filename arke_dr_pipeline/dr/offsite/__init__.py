"""Copies on S3-compatible storage: upload, Object Lock, re-reads and the sampled verification."""
