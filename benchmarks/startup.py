"""Start-up time of the command line and the library, against what any such tool pays.

The floor is ``python -c "import numpy, pyarrow, click"``: the libraries the command line
needs before it can do anything. Timed as whole child processes, interleaved (floor,
``pbg --help``, ``pbg import --help``, ``import ember``, ...), each ``--repeats`` times:
min and median wall time, the ratio of the minima to the floor's, the share of CPU
other processes used, and the verdict last (target: ``pbg --help`` within 1.3x of the
floor). ``import ember`` is light (the engine loads on first use); the engine's own
import (``ember.tensor([0.])``) is reported beside it for reference.

    python benchmarks/startup.py
    python benchmarks/startup.py --repeats 21
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import cpu_stat, install_report, noise_share, summary

TARGET = 1.3  # pbg --help within 1.3x of the floor


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument(
        "--baseline",
        metavar="PYTHON",
        help="another install's python (e.g. an older checkout's venv), timed in turn",
    )
    args = ap.parse_args()

    def commands(py, tag=""):
        pbg = str(Path(py).parent / "pbg")
        return {
            f"{tag}floor: import numpy, pyarrow, click": [py, "-c", "import numpy, pyarrow, click"],
            f"{tag}pbg --help": [pbg, "--help"],
            f"{tag}pbg import --help": [pbg, "import", "--help"],
            f"{tag}import ember": [py, "-c", "import ember"],
            f"{tag}import ember.partitioning": [py, "-c", "import ember.partitioning"],
            f"{tag}engine: ember.tensor([0.])": [py, "-c", "import ember; ember.tensor([0.0])"],
        }

    cmds = commands(sys.executable)
    if args.baseline:
        cmds.update(commands(args.baseline, "baseline "))
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    for cmd in cmds.values():  # warm the file cache and the bytecode once
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    times = {k: [] for k in cmds}
    before = cpu_stat()
    for _ in range(args.repeats):
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
            times[name].append(time.perf_counter() - t0)
    noise = noise_share(before, cpu_stat())
    print(f"python {sys.version.split()[0]}; {args.repeats} interleaved runs each; {install_report()}")
    floor = summary(times["floor: import numpy, pyarrow, click"])[0]
    print(f"{'command':36}{'min ms':>9}{'median ms':>11}{'/ floor':>9}")
    for name, ts in times.items():
        lo, med = summary(ts)
        print(f"{name:36}{lo * 1e3:9.1f}{med * 1e3:11.1f}{lo / floor:9.2f}")
    if noise is not None:
        flag = " (noisy)" if noise > 0.2 else ""
        print(f"other processes used {noise:.0%} of the busy CPU time{flag}")
    ratio = summary(times["pbg --help"])[0] / floor
    verdict = "met" if ratio <= TARGET else "missed"
    extra = ""
    if args.baseline:
        b = (
            summary(times["baseline pbg --help"])[0]
            / summary(times["baseline floor: import numpy, pyarrow, click"])[0]
        )
        extra = f" (baseline install: {b:.2f}x)"
    print(f"verdict: pbg --help {ratio:.2f}x the floor (target <= {TARGET}x): {verdict}{extra}")


if __name__ == "__main__":
    main()
