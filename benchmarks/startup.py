"""Start-up time of the command line: `--version` and `--help` against `python -c "import click"`.

    python benchmarks/startup.py [--repeat 15] [--json]

Users' shell loops and CI jobs pay the start-up on every call, so commands import their heavy
libraries (numpy, xarray, torch) only when they run. Target: within 3x the time of importing click.
Each command runs `--repeat` times; the table shows the median wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_RATIO = 3.0
BIN = Path(sys.executable).parent


def median_seconds(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    args = ap.parse_args(argv)
    seamountae = str(BIN / "seamountae")
    baseline = median_seconds([sys.executable, "-c", "import click"], args.repeat)
    rows = []
    for command in (["--version"], ["--help"], ["detect", "--help"], ["find", "--help"]):
        seconds = median_seconds([seamountae, *command], args.repeat)
        rows.append({"command": "seamountae " + " ".join(command), "seconds": seconds, "ratio": seconds / baseline,
                     "met": seconds / baseline <= TARGET_RATIO})
    if args.json:
        print(json.dumps({"benchmark": "startup", "import_click_s": baseline, "target_ratio": TARGET_RATIO, "rows": rows}))
        return 0
    print(f"python -c 'import click': {baseline * 1000:.0f} ms (median of {args.repeat})")
    for r in rows:
        print(f"{r['command']:<28} {r['seconds'] * 1000:6.0f} ms  {r['ratio']:4.1f}x  {'✅' if r['met'] else '❌'} ≤ {TARGET_RATIO:g}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
