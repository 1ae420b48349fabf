"""Taking a backup: the walk of a snapshot, its inventory and pinned set, the CAR or delta, lost blocks, the log."""
