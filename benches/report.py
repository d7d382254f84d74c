#!/usr/bin/env python3
"""Turns criterion's results (target/criterion/*/new/estimates.json) and the benches' own notes
(target/tmp/authdb-bench-*.json: bytes on disk, RSS) into the Markdown tables of BENCHMARKS.md.

    python3 benches/report.py [TARGET_DIR]        # default: ./target

The time of a benchmark is criterion's headline estimate: the slope of the linear regression
when criterion sampled linearly, else the mean (flat sampling), with its 95% interval.
"""

import json
import sys
from pathlib import Path

TARGET = Path(sys.argv[1] if len(sys.argv) > 1 else "target")
CRIT = TARGET / "criterion"
META = TARGET / "tmp"

SIZES = ["10k", "1M"]
GROUP_ORDER = [
    "get_session",
    "get_user_by_email",
    "get_user_by_provider_account_id",
    "signup_create_user_link_account",
    "create_session",
    "update_session",
    "delete_session",
    "verification_create_use",
    "purge_expired",
    "concurrent_create_session_durable",
]


def load():
    out = {}
    for bj in CRIT.glob("**/new/benchmark.json"):
        b = json.loads(bj.read_text())
        est = json.loads((bj.parent / "estimates.json").read_text())
        e = est.get("slope") or est["mean"]
        ci = e["confidence_interval"]
        elems = (b.get("throughput") or {}).get("Elements")
        out[(b["group_id"], b["function_id"], b["value_str"])] = {
            "ns": e["point_estimate"],
            "lo": ci["lower_bound"],
            "hi": ci["upper_bound"],
            "elements": elems,
        }
    return out


def fmt_ns(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def main():
    r = load()
    if not r:
        sys.exit(f"no criterion results under {CRIT}")

    def t(group, func, size):
        x = r.get((group, func, size))
        return None if x is None else x["ns"]

    groups = sorted({g for g, _, _ in r}, key=lambda g: GROUP_ORDER.index(g) if g in GROUP_ORDER else 99)
    print("### Time per operation (criterion estimate, 95% interval)\n")
    for g in groups:
        if g == "concurrent_create_session_durable":
            continue
        funcs = []
        for (gg, f, _) in sorted(r):
            if gg == g and f not in funcs:
                funcs.append(f)
        sizes = [s for s in SIZES if any((g, f, s) in r for f in funcs)]
        per_row = g == "purge_expired"
        print(f"**{g}**" + (" (time per purged row)" if per_row else "") + "\n")
        print("| engine | " + " | ".join(sizes) + " |")
        print("|---|" + "---|" * len(sizes))
        for f in funcs:
            cells = []
            for s in sizes:
                x = r.get((g, f, s))
                if x is None:
                    cells.append("—")
                    continue
                div = x["elements"] if per_row and x["elements"] else 1
                cells.append(f"{fmt_ns(x['ns'] / div)} ({fmt_ns(x['lo'] / div)} – {fmt_ns(x['hi'] / div)})")
            print(f"| {f} | " + " | ".join(cells) + " |")
        print()

    print("### Ratios (authdb time ÷ baseline time: below 1 = authdb faster)\n")
    print("| operation | size | vs SQLite (durable / FULL) | vs raw redb (durable) | vs SQLite (non-durable / NORMAL) | vs raw redb (non-durable) |")
    print("|---|---|---|---|---|---|")
    for g in groups:
        if g == "concurrent_create_session_durable":
            continue
        for s in SIZES:
            if g.startswith("get_"):
                a = t(g, "authdb", s)
                if a is None:
                    continue
                print(f"| {g} (read) | {s} | {fmt_ratio(ratio(a, t(g, 'sqlite', s)))} | "
                      f"{fmt_ratio(ratio(a, t(g, 'redb_get', s)))} | | |")
            else:
                a = t(g, "authdb_durable", s)
                if a is None:
                    continue
                an = t(g, "authdb_nodurable", s)
                print(f"| {g} | {s} | {fmt_ratio(ratio(a, t(g, 'sqlite_full', s)))} | "
                      f"{fmt_ratio(ratio(a, t(g, 'redb_durable', s)))} | "
                      f"{fmt_ratio(ratio(an, t(g, 'sqlite_normal', s)))} | "
                      f"{fmt_ratio(ratio(an, t(g, 'redb_nodurable', s)))} |")
    print()

    cg = "concurrent_create_session_durable"
    threads = sorted({int(v) for g, _, v in r if g == cg})
    if threads:
        print("### Concurrent durable create_session (10k data set): total throughput\n")
        print("| threads | authdb (sessions/s) | SQLite FULL (sessions/s) | authdb ÷ SQLite | authdb writes per transaction |")
        print("|---|---|---|---|---|")
        for n in threads:
            a = r.get((cg, "authdb", str(n)))
            q = r.get((cg, "sqlite", str(n)))
            ta = a and a["elements"] / (a["ns"] / 1e9)
            tq = q and q["elements"] / (q["ns"] / 1e9)
            gc = META / f"authdb-bench-concurrency-{n}-groupcommit.json"
            per_txn = "—"
            if gc.exists():
                d = json.loads(gc.read_text())
                per_txn = f"{d['operations'] / max(d['transactions'], 1):.2f}"
            print(f"| {n} | {ta:,.0f} | {tq:,.0f} | {fmt_ratio(ratio(ta, tq))} | {per_txn} |" if ta and tq else f"| {n} | — | — | — | {per_txn} |")
        print()

    print("### Issue 4 targets, computed from the numbers above\n")
    print("| target | measured | met? |")
    print("|---|---|---|")

    def verdict(ok):
        return "—" if ok is None else ("yes" if ok else "**no**")

    for s in SIZES:
        a, q, f = t("get_session", "authdb", s), t("get_session", "sqlite", s), t("get_session", "redb_get", s)
        if a is None:
            continue
        sp, ov = ratio(q, a), ratio(a, f)
        print(f"| get_session on {s}: ≥ 2.5× faster than SQLite | {fmt_ratio(sp)} faster | "
              f"{verdict(sp and sp >= 2.5)}{'' if s == '1M' else ' (target is for 1M)'} |")
        print(f"| get_session on {s}: within 2× of raw redb get | {fmt_ratio(ov)} of redb | "
              f"{verdict(ov and ov <= 2.0)}{'' if s == '1M' else ' (target is for 1M)'} |")
    inter = {}
    for m in META.glob("authdb-bench-ops-*-interleaved.json"):
        d = json.loads(m.read_text())
        for x in d["results"]:
            inter[(x["op"], d["label"])] = x
    for s in SIZES:
        a, f = t("create_session", "authdb_durable", s), t("create_session", "redb_durable", s)
        if a is None:
            continue
        ov = ratio(a, f)
        print(f"| durable create_session ({s}) within 1.3× of raw redb one-insert durable commit: criterion (sequential) | "
              f"{fmt_ratio(ov)} | {verdict(ov and ov <= 1.3)} (disk drift, see below) |")
        x = inter.get(("create_session", s))
        if x:
            print(f"| durable create_session ({s}) within 1.3× of raw redb: interleaved, median per-round ratio | "
                  f"{fmt_ratio(x['ratio_redb'])} | {verdict(x['ratio_redb'] <= 1.3)} |")
    a8, q8 = r.get((cg, "authdb", "8")), r.get((cg, "sqlite", "8"))
    if a8 and q8:
        x = ratio(a8["elements"] / a8["ns"], q8["elements"] / q8["ns"])
        print(f"| 8-thread durable writes ≥ 3× SQLite throughput | {fmt_ratio(x)} | {verdict(x >= 3)} |")
    for engine in ("authdb_durable", "authdb_nodurable"):
        p = [r.get(("purge_expired", engine, s)) for s in SIZES]
        if all(p):
            per = [x["ns"] / x["elements"] for x in p]
            x = per[1] / per[0]
            print(f"| purge cost per row independent of live rows ({engine}; 1M ÷ 10k per-row cost ≤ 1.5×) | "
                  f"{fmt_ns(per[0])} → {fmt_ns(per[1])} per row ({fmt_ratio(x)}) | {verdict(x <= 1.5)} |")
    print()

    if inter:
        print("### Durable writes, interleaved (not criterion: one operation per engine per round, "
              "rotating order; single-operation latencies in µs as p10 / p50 / p90; ratio = median "
              "over rounds of authdb ÷ baseline)\n")
        print("| operation | size | authdb | SQLite FULL | raw redb | authdb ÷ SQLite | authdb ÷ redb |")
        print("|---|---|---|---|---|---|---|")
        f3 = lambda v: " / ".join(f"{x:.0f}" for x in v)
        for g in GROUP_ORDER:
            for s in SIZES:
                x = inter.get((g, s))
                if x:
                    print(f"| {g} | {s} | {f3(x['authdb_us'])} | {f3(x['sqlite_us'])} | {f3(x['redb_us'])} | "
                          f"{fmt_ratio(x['ratio_sqlite'])} | {fmt_ratio(x['ratio_redb'])} |")
        print()

    probes = sorted(META.glob("authdb-bench-*-fsync.json"), key=lambda m: m.stat().st_mtime)
    if probes:
        print("### Disk flush latency at the start of each durable group (fdatasync of 4 KiB, 200 times)\n")
        print("| bench | before | median | p90 |")
        print("|---|---|---|---|")
        for m in probes:
            d = json.loads(m.read_text())
            print(f"| {d['bench']} | {d['when']} | {d['p50_us']:.0f} µs | {d['p90_us']:.0f} µs |")
        print()

    metas = sorted(META.glob("authdb-bench-*-disk.json"))
    if metas:
        print("### Bytes on disk (after bulk loading; users phase = users + accounts only)\n")
        print("| bench | size | authdb file | authdb B/user | authdb B/session | authdb compacted B/user | authdb compacted B/session | SQLite file | SQLite B/user | SQLite B/session | raw redb file | load time |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for m in metas:
            d = json.loads(m.read_text())
            n, u = d["sessions"], d["users"]
            a, s = d["authdb"], d["sqlite"]
            print(f"| {d['bench']} | {d['label']} | {a['total']:,} | {a['users_phase'] / u:.0f} | "
                  f"{(a['total'] - a['users_phase']) / n:.0f} | {a['users_phase_compacted'] / u:.0f} | "
                  f"{(a['total_compacted'] - a['users_phase_compacted']) / n:.0f} | {s['total']:,} | "
                  f"{s['users_phase'] / u:.0f} | {(s['total'] - s['users_phase']) / n:.0f} | "
                  f"{d['raw_redb']:,} | {d['load_secs']:.1f} s |")
        print()
    rss = sorted(META.glob("authdb-bench-*-rss.json"))
    if rss:
        print("### Memory (VmHWM: peak resident set of the phase; VmRSS at its end, or before it for *-authdb-alone)\n")
        print("| bench | phase | peak RSS | RSS at end (before) |")
        print("|---|---|---|---|")
        for m in rss:
            d = json.loads(m.read_text())
            print(f"| {d['bench']} | {d['when']} | {d['hwm_kib'] / 1024:.0f} MiB | {d['rss_kib'] / 1024:.0f} MiB |")
        print()


if __name__ == "__main__":
    main()
