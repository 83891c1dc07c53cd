"""PNG plots for docs/benchmarks.md, one per scenario (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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


def _update_label(row: Mapping[str, object]) -> str:
    backend = "PG" if row.get("backend") == "postgresql" else "SQLite"
    workers = f" w{row['workers']}" if _number(row.get("workers")) > 1 else ""
    if row.get("mode") == "open":
        return f"{backend}{workers}\nopen {_number(row['offered_per_second']):,.0f}/s"
    return f"{backend}{workers}\n{row['clients']} clients"


def plot_updates(rows: Sequence[Mapping[str, object]], path: Path) -> Path:
    """Acknowledged updates per second and p50/p99 per run (backend, closed/open loop)."""
    labels = [_update_label(r) for r in rows]
    rate = [_number(r["updates_per_second"]) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    colours = ["#1f77b4" if r.get("backend") == "sqlite" else "#2ca02c" for r in rows]
    left.bar(labels, rate, color=colours)
    left.axhline(3000, color="grey", linestyle="--", label="target (SQLite, 100 clients): 3,000/s")
    left.set_ylabel("durable acknowledged updates per second")
    left.legend(fontsize=8)
    left.set_title("updates (closed loop: wrk; open loop: scheduled rate)")
    left.tick_params(axis="x", labelsize=7)
    xs = range(len(rows))
    right.bar([x - 0.2 for x in xs], [_number(r.get("p50_ms")) for r in rows], 0.4, label="p50")
    right.bar([x + 0.2 for x in xs], [_number(r.get("p99_ms")) for r in rows], 0.4, label="p99")
    right.axhline(20, color="grey", linestyle="--", label="target p99: 20 ms")
    right.set_xticks(list(xs), labels, fontsize=7)
    right.set_yscale("log")
    right.set_ylabel("ms (log); open loop: from the scheduled send")
    right.legend(fontsize=8)
    right.set_title("latency")
    loads = sorted({str(r.get("load_before", "?")).split()[0] for r in rows})
    fig.suptitle(
        f"server on core 0, load generator on core 1; 1-min load before: {', '.join(loads)}",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_freshness(row: Mapping[str, object], path: Path) -> Path:
    """From `good` to the new answer on an NSD secondary: the delays of one run, sorted."""
    delays = sorted(_number(d) for d in row.get("nsd_delays_ms", []))  # type: ignore[attr-defined]
    fig, axis = plt.subplots(figsize=(7, 4.2))
    axis.plot([100 * (i + 1) / len(delays) for i in range(len(delays))], delays, "o-", ms=3,
              label=f"NSD (NOTIFY + IXFR), {len(delays)} updates, "
              f"{row.get('background_clients')} wrk clients updating other hosts")  # fmt: skip
    axis.axhline(200, color="grey", linestyle="--", label="target: 200 ms")
    fresh = row.get("homing_fresh_at_good")
    axis.set_title(
        f"homing answered the new address at `good` {fresh} of {row.get('rounds')} times",
        fontsize=9,
    )
    axis.set_xlabel("percent of updates")
    axis.set_ylabel("ms from `good` to NSD's new answer")
    axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latest(path: Path, key: Callable[[dict[str, object]], object]) -> list[dict[str, object]]:
    """The newest recorded run per `key`, from a bench/results/*.jsonl file, in first-seen order."""
    import json

    newest: dict[object, dict[str, object]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            newest[key(row)] = row
    return list(newest.values())


def _update_key(row: dict[str, object]) -> object:
    return (row.get("backend"), row.get("mode", "closed"), row.get("workers", 1),
            row.get("clients"), row.get("offered_per_second"))  # fmt: skip


def main() -> None:
    """`python bench/plot.py updates|freshness`: redraw the plot from bench/results."""
    import argparse

    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("scenario", choices=["updates", "freshness"])
    args = parser.parse_args()
    results = root / "bench" / "results"
    if args.scenario == "updates":
        rows = [r for r in latest(results / "updates.jsonl", _update_key) if "mode" in r]
        rows.sort(
            key=lambda r: (
                str(r.get("backend")),
                str(r.get("mode")),
                _number(r.get("workers")),
                _number(r.get("clients")) + _number(r.get("offered_per_second")),
            )
        )
        if not rows:
            raise SystemExit("no update results yet: run bench/updates.py first")
        print(plot_updates(rows, root / "docs" / "benchmarks-updates.png"))
    else:
        # The newest complete run, SQLite first: a record without delays has nothing to draw.
        runs = latest(
            results / "freshness.jsonl", lambda r: (r.get("backend"), "nsd_delays_ms" in r)
        )
        runs = [r for r in runs if "nsd_delays_ms" in r]
        runs.sort(key=lambda r: r.get("backend") != "sqlite")
        if not runs:
            raise SystemExit("no freshness results yet: run bench/freshness.py first")
        print(plot_freshness(runs[0], root / "docs" / "benchmarks-freshness.png"))


if __name__ == "__main__":
    main()
