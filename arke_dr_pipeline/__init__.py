"""Disaster recovery for the Arke IPFS archive."""

__version__ = "0.1.0"
