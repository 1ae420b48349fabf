"""Target 1 of #31: does a block cost the same at 10x as at 30k? Reads a
`benchmarks run` result (its `per_block_us`) and a `benchmarks.scale`
result (each phase's `us_per_block`) and prints the ratio of each
operation's time per block, met when within 1.3x.

    python -m benchmarks.linear benchmarks/results/final-30k-100k-api.json \\
        benchmarks/results/scale-300k-1m-api-final.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

LIMIT = 1.3
PHASES = {"export": "export-car", "verify": "verify-car", "restore": "restore"}


def compare(small: dict, large: dict) -> list[dict]:
    """One row per operation both runs measured; operations either run lacks are left out."""
    rows = []
    for name, phase in PHASES.items():
        base, scaled = small.get("per_block_us", {}).get(name), large.get(phase, {}).get("us_per_block")
        if base and scaled:
            ratio = round(scaled / base, 2)
            rows.append({"operation": name, "us_per_block_small": base, "us_per_block_large": scaled,
                         "ratio": ratio, "met": ratio <= LIMIT})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.linear")
    parser.add_argument("small", help="the 30k run (python -m benchmarks run)")
    parser.add_argument("large", help="the 10x run (python -m benchmarks.scale)")
    args = parser.parse_args(argv)
    try:
        small, large = (json.loads(Path(p).read_text()) for p in (args.small, args.large))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = compare(small, large)
    if not rows:
        print("error: no operation has a per-block time in both runs", file=sys.stderr)
        return 2
    for r in rows:
        print(f"{'met' if r['met'] else 'MISSED':7} {r['operation']:8} {r['us_per_block_small']:>9.2f} µs/block "
              f"-> {r['us_per_block_large']:>9.2f} µs/block: {r['ratio']}x (target <= {LIMIT}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
