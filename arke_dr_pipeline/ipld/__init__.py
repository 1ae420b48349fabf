"""Offline IPLD: CIDs, CAR v1 framing, link extraction. No node, no Dagster."""
