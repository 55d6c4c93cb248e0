"""Shared helpers for benchmarks (BENCHMARKING.md): interleaved repeats, noise, BLAS info."""

from __future__ import annotations

import os
import statistics
import time


def cpu_stat():
    """(total jiffies, this process tree's jiffies) from /proc/stat and os.times()."""
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()[1:]
        total = sum(int(p) for p in parts)
        idle = int(parts[3]) + int(parts[4])
    except OSError:
        return None
    t = os.times()
    return total, total - idle, (t.user + t.system + t.children_user + t.children_system)


def noise_share(before, after) -> float | None:
    """Share of busy CPU time used by other processes between two ``cpu_stat`` readings."""
    if before is None or after is None:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    busy = (after[1] - before[1]) / hz
    ours = after[2] - before[2]
    if busy <= 0:
        return 0.0
    return max(0.0, (busy - ours) / busy)


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info

        return "; ".join(
            f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
            f"threads={i.get('num_threads')}"
            for i in threadpool_info()
        )
    except ImportError:
        return "threadpoolctl not installed"


def interleave(fns: dict, repeats: int = 7, inner: int = 1):
    """Run each callable ``repeats`` times, alternating; return name -> list of seconds per call."""
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            times[name].append((time.perf_counter() - t0) / inner)
    return times


def summary(ts):
    return min(ts), statistics.median(ts)


def install_report() -> str:
    """Which install a benchmark measures: the packages present beyond what ember declares
    (its dependencies and its ``dev`` extra, which the README's set-up installs) and their
    own requirements. A package that happens to be in a developer's venv can change the
    speed (threadpoolctl once hid a 3x slowdown that every fresh install had)."""
    import re
    from importlib import metadata

    def norm(n):
        return re.sub(r"[-_.]+", "-", n).lower()

    def reqs(dist, extras=()):
        out = []
        for r in dist.requires or []:
            name, _, marker = r.partition(";")
            m = re.match(r"\s*([A-Za-z0-9_.-]+)", name)
            if not m:
                continue
            marker = marker.strip()
            if "extra" in marker and not any(f'extra == "{e}"' in marker for e in extras):
                continue
            if marker and "extra" not in marker:
                try:
                    from packaging.markers import Marker

                    if not Marker(marker).evaluate():
                        continue
                except Exception:
                    pass
            out.append(norm(m.group(1)))
        return out

    try:
        root = metadata.distribution("ember")
    except metadata.PackageNotFoundError:
        return "install: ember is not installed in this environment"
    needed, todo = {"ember"}, reqs(root, ("dev",))
    while todo:
        n = todo.pop()
        if n in needed:
            continue
        needed.add(n)
        try:
            todo += reqs(metadata.distribution(n))
        except metadata.PackageNotFoundError:
            pass
    base = {"pip", "setuptools", "wheel"}
    extra = sorted(
        {norm(d.metadata["Name"]) for d in metadata.distributions() if d.metadata["Name"]} - needed - base
    )
    if not extra:
        return "install: as the README makes it (ember[dev] and what it requires; nothing else)"
    return f"install: NOT the README's: also present {', '.join(extra)}"
