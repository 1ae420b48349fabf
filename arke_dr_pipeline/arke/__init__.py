"""The Arke domain: manifests, events, snapshots, the index pointer, tips. No I/O."""
