#!/usr/bin/env python3
"""Turns one benchmark run into the Markdown tables of BENCHMARKS.md: the targets of issue 14 as
ratios, the interleaved measures they come from, the interleaved concurrency pairs with their
disk probes, criterion's per-operation estimates, bytes on disk and memory.

    python3 benches/report.py [TARGET_DIR]        # default: ./target

Inputs: the benches' notes (TARGET_DIR/tmp/authdb-bench-*.json, rewritten by each run) and
criterion's TARGET_DIR/criterion/*/new/estimates.json (only those written since the `ops` run
started are used).

Disk probes: before and after every block of interleaved durable rounds, and before and after
every (authdb, SQLite) concurrency pair, the benches time fdatasync of 4 KiB. Two probes agree
when the larger median is at most PROBE_TOLERANCE times the smaller. Ratios of durable measures
are taken only from rounds/pairs whose probes agree, and a durable target is judged (met / not
met) only when every probe pair of its measure agrees; otherwise it is "not judged". Reads and
bytes on disk do not flush, so probes do not gate them.
"""

import json
import statistics
import sys
from pathlib import Path

PROBE_TOLERANCE = 1.3

TARGET = Path(sys.argv[1] if len(sys.argv) > 1 else "target")
CRIT = TARGET / "criterion"
META = TARGET / "tmp"

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
]


def size_key(label):
    try:
        if label.endswith("M"):
            return float(label[:-1]) * 1e6
        if label.endswith("k"):
            return float(label[:-1]) * 1e3
        return float(label)
    except ValueError:
        return 1e18


def read_meta(pattern, by_time=False):
    """The notes matching `pattern`, by name (or by the time they were written)."""
    files = sorted(META.glob(pattern), key=(lambda m: m.stat().st_mtime) if by_time else None)
    out = []
    for m in files:
        try:
            out.append(json.loads(m.read_text()))
        except (OSError, ValueError):
            pass
    return out


def agree(a, b):
    hi, lo = max(a["p50_us"], b["p50_us"]), min(a["p50_us"], b["p50_us"])
    return hi <= lo * PROBE_TOLERANCE


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round((len(xs) - 1) * q))]


def fmt_us(us):
    if us >= 1000:
        return f"{us / 1000:.3g} ms"
    if us >= 1:
        return f"{us:.3g} µs"
    return f"{us * 1000:.3g} ns"


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


# ---------------------------------------------------------------------------------------------
# Interleaved single operations (ops)


class Measure:
    def __init__(self, label, d):
        self.label = label
        self.op = d["op"]
        self.unit = d["unit"]
        self.durable = d["durable"]
        self.engines = d["engines"]
        self.times = dict(zip(d["engines"], d["times"]))
        self.blocks = d["blocks"]
        keep = []
        self.blocks_agree = 0
        if self.durable:
            for b in self.blocks:
                ok = agree(b["before"], b["after"])
                self.blocks_agree += ok
                keep += [ok] * b["rounds"]
        else:
            keep = [True] * len(d["times"][0])
        self.keep = keep

    @property
    def judged(self):
        return not self.durable or self.blocks_agree == len(self.blocks)

    def probe_note(self):
        if not self.durable:
            return "no flush (probes do not apply)"
        bad = len(self.blocks) - self.blocks_agree
        if bad == 0:
            return f"all {len(self.blocks)} probe pairs agree"
        return f"{bad} of {len(self.blocks)} probe pairs disagree"

    def ratio(self, engine, all_rounds=False):
        """Median over (kept) rounds of authdb ÷ engine."""
        a, b = self.times["authdb"], self.times.get(engine)
        if b is None:
            return None
        r = [x / y for x, y, k in zip(a, b, self.keep) if (k or all_rounds) and y > 0]
        return statistics.median(r) if r else None

    def pct(self, engine):
        t = self.times[engine]
        return quantile(t, 0.1), quantile(t, 0.5), quantile(t, 0.9)


def load_interleaved():
    out = {}
    for d in read_meta("authdb-bench-ops-*-interleaved.json"):
        for m in d["measures"]:
            out[(m["op"], d["label"])] = Measure(d["label"], m)
        out[("_run", d["label"])] = d
    return out


# ---------------------------------------------------------------------------------------------
# Concurrency pairs


class Pairs:
    def __init__(self, d):
        self.label = d["label"]
        self.threads = d["threads"]
        self.per_thread = d["per_thread"]
        self.pairs = d["pairs"]
        for p in self.pairs:
            p["agree"] = agree(p["before"], p["after"])
        self.good = [p for p in self.pairs if p["agree"]]

    @property
    def judged(self):
        return len(self.good) == len(self.pairs) and self.pairs

    def probe_note(self):
        bad = len(self.pairs) - len(self.good)
        if bad == 0:
            return f"all {len(self.pairs)} pairs' probes agree"
        return f"{bad} of {len(self.pairs)} pairs' probes disagree"

    def ratio(self):
        r = [p["authdb_per_s"] / p["sqlite_per_s"] for p in self.good]
        return statistics.median(r) if r else None

    def median(self, key, pairs=None):
        xs = [p[key] for p in (self.good if pairs is None else pairs)]
        return statistics.median(xs) if xs else None


def load_concurrency():
    return {(p.label, p.threads): p for p in map(Pairs, read_meta("authdb-bench-concurrency-*-pairs.json"))}


# ---------------------------------------------------------------------------------------------
# criterion


def load_criterion(since):
    out = {}
    for bj in CRIT.glob("**/new/benchmark.json"):
        est_path = bj.parent / "estimates.json"
        if not est_path.exists() or est_path.stat().st_mtime < since:
            continue
        b = json.loads(bj.read_text())
        est = json.loads(est_path.read_text())
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
    return fmt_us(ns / 1000)


# ---------------------------------------------------------------------------------------------


def verdict(value, ok, judged, why_not=""):
    if value is None:
        return "not measured"
    if not judged:
        return f"not judged ({why_not})"
    return "met" if ok else "**not met**"


def main():
    inter = load_interleaved()
    conc = load_concurrency()
    runs = {d["bench"]: d for d in read_meta("authdb-bench-*-run.json")}
    loads = read_meta("authdb-bench-*-loadavg-*.json")
    disk = {d["label"]: d for d in read_meta("authdb-bench-ops-*-disk.json")}
    labels = sorted({k[1] for k in inter} | {k[0] for k in conc} | set(disk), key=size_key)
    if not labels:
        sys.exit(f"no benchmark notes under {META}")
    large = [l for l in labels if l == "1M"]

    # Run
    print("### The run\n")
    for bench, d in sorted(runs.items()):
        dirty = " + uncommitted changes in `src/`" if d.get("src_dirty") else ""
        print(f"- `{bench}`: commit `{d.get('commit')}`{dirty}, `src/` fingerprint "
              f"`{d.get('src_fingerprint')}`")
    for d in sorted(loads, key=lambda d: d["unix"]):
        a, b, c = d["load"]
        print(f"- load average at {d['bench']} {d['when']}: {a:.2f} / {b:.2f} / {c:.2f} (1 / 5 / 15 min)")
    print(f"- probe tolerance: two flush probes agree when their medians differ by at most "
          f"{PROBE_TOLERANCE}×\n")

    # Targets
    rows = []

    def add(measure, size, value, target, ok, judged, note, where=""):
        rows.append((measure, size, value, target, verdict(value, ok, judged, note), where))

    for l in labels:
        m = inter.get(("get_session", l))
        if m:
            r = m.ratio("redb_get")
            applies = l == "1M"
            add("get_session vs raw redb one `get` in a fresh read transaction", l, fmt_ratio(r),
                "≤ 1.3× (stretch ≤ 1.0×), at 1M", r is not None and r <= 1.3, applies,
                "target is for 1M")
    for l in labels:
        m = inter.get(("get_session", l))
        if m:
            r = m.ratio("sqlite")
            sp = None if r is None else 1 / r
            add("get_session vs SQLite (uniform over all tokens, equal cache)", l,
                None if sp is None else f"{sp:.2f}× faster", "≥ 3× faster, at 100k and 1M",
                sp is not None and sp >= 3, l in ("100k", "1M"), "target is for 100k and 1M")
    for l in labels:
        m = inter.get(("create_session", l))
        if m:
            r = m.ratio("redb_insert")
            add("durable create_session, 1 thread, vs raw redb one-insert durable commit", l,
                fmt_ratio(r), "≤ 1.15×", r is not None and r <= 1.15, m.judged, m.probe_note())
    for l in labels:
        m = inter.get(("update_session", l))
        if m:
            r = m.ratio("redb_insert")
            add("durable update_session (extension) vs the same floor", l, fmt_ratio(r),
                "≤ 1.1×", r is not None and r <= 1.1, m.judged, m.probe_note())
    for l in labels:
        p = conc.get((l, 8))
        if p:
            r = p.ratio()
            add("8-thread durable create_session vs SQLite, interleaved", l,
                None if r is None else f"{r:.2f}× SQLite's throughput", "≥ 5×",
                r is not None and r >= 5, p.judged, p.probe_note())
    for l in labels:
        m = inter.get(("purge_expired", l))
        if m:
            r = m.ratio("redb_delete_random")
            add("purge, per expired row, vs raw redb deleting as many random keys", l,
                fmt_ratio(r), "≤ 1.5×, at 1M", r is not None and r <= 1.5,
                m.judged and l == "1M",
                m.probe_note() if not m.judged else "target is for 1M")
    for l in labels:
        d = disk.get(l)
        if d:
            a = (d["authdb"]["total"] - d["authdb"]["users_phase"]) / d["sessions"]
            s = (d["sqlite"]["total"] - d["sqlite"]["users_phase"]) / d["sessions"]
            r = a / s
            add("bytes on disk per session vs SQLite", l, f"{r:.2f}× ({a:.0f} B vs {s:.0f} B)",
                "≤ 0.6×", r <= 0.6, True, "")
    if not large:
        print("**No 1M data set in this run: the targets stated for 1M are not judged.**\n")
    print("### Issue 14 targets (ratios from this one run)\n")
    print("| measure | size | measured | target | verdict |")
    print("|---|---|---|---|---|")
    for measure, size, value, target, v, _ in rows:
        print(f"| {measure} | {size} | {value if value is not None else '—'} | {target} | {v} |")
    print()

    # Interleaved tables
    ops = [o for o in GROUP_ORDER if any((o, l) in inter for l in labels)]
    if ops:
        print("### Interleaved single operations (per round each engine does one unit, rotating "
              "order; µs per unit as p10 / p50 / p90 over all rounds; ratio = median over the "
              "rounds of blocks whose probes agree of authdb ÷ engine)\n")
        print("| operation | size | unit | engine | p10 / p50 / p90 (µs) | authdb ÷ engine | probes |")
        print("|---|---|---|---|---|---|---|")
        for o in ops:
            for l in labels:
                m = inter.get((o, l))
                if not m:
                    continue
                for e in m.engines:
                    p10, p50, p90 = m.pct(e)
                    r = "" if e == "authdb" else fmt_ratio(m.ratio(e))
                    note = m.probe_note() if e == "authdb" else ""
                    print(f"| {o} | {l} | {m.unit} | {e} | {p10:.2f} / {p50:.2f} / {p90:.2f} | {r} | {note} |")
        print()
        print("Probe medians (µs) per block of durable rounds, before → after (✗: disagree):\n")
        for o in ops:
            for l in labels:
                m = inter.get((o, l))
                if not m or not m.durable:
                    continue
                cells = []
                for b in m.blocks:
                    ok = agree(b["before"], b["after"])
                    cells.append(f"{b['before']['p50_us']:.0f}→{b['after']['p50_us']:.0f}{'' if ok else ' ✗'}")
                print(f"- {o} [{l}]: " + ", ".join(cells))
        print()

    # Concurrency
    if conc:
        print("### Concurrent durable create_session, interleaved pairs (sessions per second; "
              "ratio = median over pairs whose probes agree)\n")
        print("| size | threads | authdb (median) | SQLite FULL (median) | authdb ÷ SQLite | authdb writes per transaction | probes |")
        print("|---|---|---|---|---|---|---|")
        for (l, t), p in sorted(conc.items(), key=lambda kv: (size_key(kv[0][0]), kv[0][1])):
            a, s = p.median("authdb_per_s"), p.median("sqlite_per_s")
            ops_ = sum(x["authdb_ops"] for x in p.pairs)
            txns = sum(x["authdb_txns"] for x in p.pairs)
            per = f"{ops_ / txns:.2f}" if txns else "—"
            print(f"| {l} | {t} | {a:,.0f}/s | {s:,.0f}/s | {fmt_ratio(p.ratio())} | {per} | {p.probe_note()} |"
                  if a and s else f"| {l} | {t} | — | — | — | {per} | {p.probe_note()} |")
        print()
        print("Every pair (order, probe median before → after, throughputs):\n")
        print("| size | threads | pair | first | probe p50 before → after | agree | authdb | SQLite | ratio |")
        print("|---|---|---|---|---|---|---|---|---|")
        for (l, t), p in sorted(conc.items(), key=lambda kv: (size_key(kv[0][0]), kv[0][1])):
            for i, x in enumerate(p.pairs, 1):
                print(f"| {l} | {t} | {i} | {x['first']} | {x['before']['p50_us']:.0f} → {x['after']['p50_us']:.0f} µs | "
                      f"{'yes' if x['agree'] else '**no**'} | {x['authdb_per_s']:,.0f}/s | {x['sqlite_per_s']:,.0f}/s | "
                      f"{x['authdb_per_s'] / x['sqlite_per_s']:.2f}× |")
        print()

    # criterion
    since = runs.get("ops", {}).get("start_unix", 0)
    r = load_criterion(since) if "ops" in runs else {}
    if r:
        print("### criterion, engines one after another (same run; durable rows compare "
              "different moments of the disk — see the interleaved tables for those)\n")
        groups = sorted({g for g, _, _ in r}, key=lambda g: GROUP_ORDER.index(g) if g in GROUP_ORDER else 99)
        for g in groups:
            funcs = sorted({f for gg, f, _ in r if gg == g})
            sizes = [s for s in labels if any((g, f, s) in r for f in funcs)]
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

        def t(g, f, s):
            x = r.get((g, f, s))
            return None if x is None else x["ns"]

        def ratio(a, b):
            return None if a is None or b is None or b == 0 else a / b

        print("criterion ratios (authdb time ÷ baseline time; below 1 = authdb faster). "
              "Non-durable: authdb `Durability::None` vs SQLite `synchronous=NORMAL` — **not the "
              "same guarantee**: a plain process crash loses redb's unflushed commits, while "
              "SQLite's survive in the WAL.\n")
        print("| operation | size | vs SQLite FULL (durable) | vs raw redb (durable) | vs SQLite NORMAL (authdb non-durable) | vs raw redb (non-durable) |")
        print("|---|---|---|---|---|---|")
        for g in groups:
            for s in labels:
                if g.startswith("get_"):
                    a = t(g, "authdb", s)
                    if a is not None:
                        print(f"| {g} (read) | {s} | {fmt_ratio(ratio(a, t(g, 'sqlite', s)))} | "
                              f"{fmt_ratio(ratio(a, t(g, 'redb_get', s)))} | | |")
                else:
                    a, an = t(g, "authdb_durable", s), t(g, "authdb_nodurable", s)
                    if a is None:
                        continue
                    print(f"| {g} | {s} | {fmt_ratio(ratio(a, t(g, 'sqlite_full', s)))} | "
                          f"{fmt_ratio(ratio(a, t(g, 'redb_durable', s)))} | "
                          f"{fmt_ratio(ratio(an, t(g, 'sqlite_normal', s)))} | "
                          f"{fmt_ratio(ratio(an, t(g, 'redb_nodurable', s)))} |")
        print()
        probes = read_meta("authdb-bench-ops-*-fsync.json", by_time=True)
        if probes:
            print("Flush probe before each criterion group (fdatasync of 4 KiB): " + ", ".join(
                f"{d['when']} {d['p50_us']:.0f} µs" for d in probes) + "\n")

    # Disk
    if disk:
        print("### Bytes on disk (after bulk loading; users phase = users + accounts only)\n")
        print("| size | authdb file | authdb B/user | authdb B/session | authdb compacted B/session | SQLite file | SQLite B/user | SQLite B/session | authdb ÷ SQLite per session | raw redb file | load time |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for l in labels:
            d = disk.get(l)
            if not d:
                continue
            n, u = d["sessions"], d["users"]
            a, s = d["authdb"], d["sqlite"]
            asess = (a["total"] - a["users_phase"]) / n
            ssess = (s["total"] - s["users_phase"]) / n
            comp = (f"{(a['total_compacted'] - a['users_phase_compacted']) / n:.0f}"
                    if a["total_compacted"] else "—")
            print(f"| {l} | {a['total']:,} | {a['users_phase'] / u:.0f} | {asess:.0f} | {comp} | "
                  f"{s['total']:,} | {s['users_phase'] / u:.0f} | {ssess:.0f} | {asess / ssess:.2f}× | "
                  f"{d['raw_redb']:,} | {d['load_secs']:.1f} s |")
        print()

    rss = read_meta("authdb-bench-*-rss.json")
    if rss:
        print("### Memory (VmHWM: peak resident set of the phase; VmRSS at its end, or before it for *-authdb-alone)\n")
        print("| bench | phase | peak RSS | RSS at end (before) |")
        print("|---|---|---|---|")
        for d in rss:
            print(f"| {d['bench']} | {d['when']} | {d['hwm_kib'] / 1024:.0f} MiB | {d['rss_kib'] / 1024:.0f} MiB |")
        print()


if __name__ == "__main__":
    main()
