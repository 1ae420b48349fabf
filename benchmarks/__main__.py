"""`python -m benchmarks run --entities 30000 --events 100000 --out results.json`"""

from __future__ import annotations

import argparse
import sys

from .harness import PHASES, run, save, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="generate an archive on a fresh node and measure everything")
    r.add_argument("--entities", type=int, default=30_000)
    r.add_argument("--events", type=int, default=100_000)
    r.add_argument("--chain-events", type=int, default=1_000_000, help="events of the memory run (0: skip)")
    r.add_argument("--image-fraction", type=float, default=0.005)
    r.add_argument("--large-mb", type=int, default=512, help="size of the large-block verification CAR")
    r.add_argument("--small-blocks", type=int, default=300_000)
    r.add_argument("--bare-export-rss-limit-mb", type=float, default=4000,
                   help="stop bare `ipfs dag export` when the daemon passes this")
    r.add_argument("--workdir", default=None)
    r.add_argument("--baseline-budget-s", type=float, default=600,
                   help="stop the baseline's per-entity tip writes after this long and extrapolate")
    r.add_argument("--shape", choices=["api", "seed", "mixed"], default="api",
                   help="who wrote the archive (DESIGN.md §1): the Arke API, the seed's generator, or both")
    r.add_argument("--phases", default=",".join(PHASES),
                   help="the phases to measure, of " + ",".join(PHASES) + " (the export always runs)")
    r.add_argument("--out", default="results.json")
    args = parser.parse_args(argv)
    results = run(entities=args.entities, events=args.events, chain_events=args.chain_events,
                  image_fraction=args.image_fraction, large_mb=args.large_mb, small_blocks=args.small_blocks,
                  bare_export_rss_limit_mb=args.bare_export_rss_limit_mb, workdir=args.workdir,
                  baseline_budget_s=args.baseline_budget_s, partial=args.out + ".partial", shape=args.shape,
                  phases=tuple(args.phases.split(",")))
    save(results, args.out)
    text = table(results)
    print(text)
    with open(args.out.rsplit(".", 1)[0] + ".txt", "w") as fh:
        fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
