"""The operations: plain functions over arke/, ipld/ and kubo/. No Dagster here."""
