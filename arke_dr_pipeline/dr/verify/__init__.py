"""Checking a backup offline: the DAG check, the CAR verifier and the record it writes, the log's proofs."""
