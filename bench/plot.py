"""PNG plots for docs/benchmarks.md, one per scenario (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def plot_dns(
    summary: Mapping[str, Mapping[str, object]], path: Path, *, hosts: int, load: str
) -> Path:
    """Queries per second (with the ratio to Knot) and latency percentiles per server."""
    keys = list(summary)
    names = [str(summary[k]["name"]) for k in keys]
    qps = [_number(summary[k]["qps"]) for k in keys]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    colours = ["#d62728" if k.startswith("homing") else "#1f77b4" for k in keys]
    bars = left.bar(names, qps, color=colours)
    for bar, key in zip(bars, keys, strict=True):
        ratio = summary[key].get("vs_knot")
        label = f"{bar.get_height():,.0f}" + (f"\n{ratio:.2f}× Knot" if ratio else "")
        left.annotate(
            label,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    left.set_ylabel("queries per second (dnsperf, UDP)")
    left.set_title(f"DNS, {hosts:,} hosts (one core unless 'all cores')")
    left.tick_params(axis="x", labelrotation=20, labelsize=8)
    left.set_ylim(0, max(qps) * 1.25 if qps else 1)
    width = 0.38
    xs = range(len(keys))
    p50 = [_number(summary[k].get("p50_ms")) for k in keys]
    p99 = [_number(summary[k].get("p99_ms")) for k in keys]
    right.bar([x - width / 2 for x in xs], p50, width, label="p50")
    right.bar([x + width / 2 for x in xs], p99, width, label="p99")
    right.set_xticks(list(xs), names, rotation=20, fontsize=8)
    right.set_yscale("log")
    right.set_ylabel("latency under full load, ms (log)")
    right.set_title("latency (dnsperf -v run)")
    right.legend()
    fig.suptitle(f"server on core 0, dnsperf on core 1; load average before: {load}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_scale(rows: Sequence[Mapping[str, object]], path: Path) -> Path:
    """RSS and start-up time of homing against the number of hosts, with the targets."""
    hosts = [_number(r["hosts"]) for r in rows]
    rss = [_number(r["rss_mib"]) for r in rows]
    ready = [_number(r["ready_s"]) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.plot(hosts, rss, "o-", label="homing RSS after load")
    left.axhline(500, color="grey", linestyle="--", label="target at 1M: 500 MB")
    left.set_xlabel("hosts")
    left.set_ylabel("MiB")
    left.legend()
    left.set_title("memory")
    right.plot(hosts, ready, "o-", color="#d62728", label="start to READY")
    right.axhline(10, color="grey", linestyle="--", label="target at 1M: 10 s")
    right.set_xlabel("hosts")
    right.set_ylabel("seconds")
    right.legend()
    right.set_title("start-up (load) time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_updates(rows: Sequence[Mapping[str, object]], path: Path) -> Path:
    """Acknowledged updates per second and p50/p99 against the number of clients."""
    rows = sorted(rows, key=lambda r: _number(r["clients"]))
    clients = [str(r["clients"]) for r in rows]
    rate = [_number(r["updates_per_second"]) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    left.bar(clients, rate)
    left.axhline(3000, color="grey", linestyle="--", label="target at 100 clients: 3,000/s")
    left.set_xlabel("concurrent clients")
    left.set_ylabel("durable acknowledged updates per second")
    left.legend()
    left.set_title("updates (SQLite)")
    xs = range(len(rows))
    right.bar([x - 0.2 for x in xs], [_number(r["p50_ms"]) for r in rows], 0.4, label="p50")
    right.bar([x + 0.2 for x in xs], [_number(r["p99_ms"]) for r in rows], 0.4, label="p99")
    right.axhline(20, color="grey", linestyle="--", label="target p99: 20 ms")
    right.set_xticks(list(xs), clients)
    right.set_xlabel("concurrent clients")
    right.set_ylabel("ms")
    right.legend()
    right.set_title("latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latest_updates(path: Path, backend: str = "sqlite") -> list[dict[str, object]]:
    """The newest recorded run per client count, from bench/results/updates.jsonl."""
    import json

    newest: dict[object, dict[str, object]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("backend") == backend:
                newest[row["clients"]] = row
    return list(newest.values())


def main() -> None:
    """`python bench/plot.py updates`: redraw docs/benchmarks-updates.png from the results."""
    import argparse

    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("scenario", choices=["updates"])
    parser.add_argument("--out", type=Path, default=root / "docs" / "benchmarks-updates.png")
    args = parser.parse_args()
    rows = latest_updates(root / "bench" / "results" / "updates.jsonl")
    if not rows:
        raise SystemExit("no update results yet: run bench/updates.py first")
    print(plot_updates(rows, args.out))


if __name__ == "__main__":
    main()
