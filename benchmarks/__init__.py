"""Benchmarks: our pipeline against the seed's algorithms and bare Kubo, as ratios in one run."""
