"""The set of backups: stores (a folder, an S3 prefix), the on-disk format, chains and order, freshness, retention."""
