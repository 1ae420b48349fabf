"""The live archive on the node: the event chain, the index pointer, tips, snapshots, the dump."""
