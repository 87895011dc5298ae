#!/usr/bin/env python3
"""`make bench` reporting: parses wrk and h2load output into one row, and turns the rows of a run into the
tables (absolute figures, ratios against their ceilings, targets) that go into docs/benchmarks.md.

  bench-report.py wrk NAME PROTO CONNS OUTPUT_FILE                 -> one TSV row on stdout
  bench-report.py h2load NAME PROTO CONNS OUTPUT_FILE LOG_FILE     -> one TSV row on stdout
  bench-report.py report ROWS_TSV FACTS_TSV MODE COMMAND DOC       -> tables on stdout; DOC rewritten unless "-"
"""
import re
import sys

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def latency_ms(text):
    match = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    return float(match.group(1)) * UNITS[match.group(2)] if match else float("nan")


def row(name, proto, conns, rps, p50, p99, errors):
    return f"{name}\t{proto}\t{conns}\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}\t{errors}"


def parse_wrk(name, proto, conns, path):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([0-9.]+)", text).group(1))
    p50 = latency_ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = latency_ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        errors += sum(int(x) for x in m.groups())
    return row(name, proto, conns, rps, p50, p99, errors)


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, int(round(fraction * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def parse_h2load(name, proto, conns, path, log):
    text = open(path).read()
    rps = float(re.search(r"finished in [0-9.]+\w+, ([0-9.]+) req/s", text).group(1))
    m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored", text)
    errors = int(m.group(2)) + int(m.group(3))
    statuses = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    errors += int(statuses.group(3)) + int(statuses.group(4))
    durations = []
    for line in open(log):
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1] != "-1":
            durations.append(int(parts[2]) / 1000.0)
    durations.sort()
    return row(name, proto, conns, rps, percentile(durations, 0.5), percentile(durations, 0.99), errors)


# What each ratio compares: (label, measured row name, ceiling row name, target or None, kind)
RATIOS = [
    ("decision, elevated + audited + cached token / nginx `return 200`", "service-elevated", "nginx-return-200", 0.7),
    ("decision, library request (non-candidate) / nginx `return 200`", "service-library", "nginx-return-200", 0.8),
    ("nginx whole path: this service / an ideal decision service", "nginx+service", "nginx+ideal", 0.8),
    ("nginx whole path: this service / no auth at all", "nginx+service", "nginx-plain", None),
    ("Envoy 1.40: ext_authz gRPC to this service / plain proxy", "envoy+service-grpc", "envoy-plain", 0.6),
    ("Envoy 1.40: ext_authz HTTP to this service / plain proxy", "envoy+service-http", "envoy-plain", None),
    ("Caddy forward_auth: this service / an ideal decision service", "caddy+service", "caddy+ideal", None),
    ("Caddy forward_auth: this service / no auth at all", "caddy+service", "caddy-plain", None),
]
P99 = [
    ("decision p99 / nginx `return 200` p99", "service-elevated", "nginx-return-200", 1.5),
    ("nginx whole path p99: this service / ideal", "nginx+service", "nginx+ideal", 1.5),
]


def load_rows(path):
    rows = []
    for line in open(path):
        name, proto, conns, rps, p50, p99, errors = line.rstrip("\n").split("\t")
        rows.append(dict(name=name, proto=proto, conns=int(conns), rps=float(rps), p50=float(p50), p99=float(p99),
                         errors=int(errors)))
    return rows


def find(rows, name, proto, conns):
    for r in rows:
        if r["name"] == name and r["proto"] == proto and r["conns"] == conns:
            return r
    return None


def verdict(value, target, higher_is_better=True):
    if target is None:
        return ""
    ok = value >= target if higher_is_better else value <= target
    return ("met" if ok else "**missed**") + f" ({'≥' if higher_is_better else '≤'} {target})"


def report(rows_path, facts_path, mode, command, doc):
    rows = load_rows(rows_path)
    facts = dict(line.rstrip("\n").split("\t", 1) for line in open(facts_path) if "\t" in line)
    out = []
    out.append(f"Run: `{command}` ({mode}), {facts.get('date', '?')}, {facts.get('machine', '?')}. "
               f"{facts.get('duration', '?')} per load run after a warm-up; load generator, frontends, service and "
               "PMS stand-in share the machine. Latencies in ms from the load tool (wrk: HTTP/1.1; h2load: h2c).")
    out.append("")
    out.append("| path | protocol | connections | requests/s | p50 ms | p99 ms | errors |")
    out.append("|---|---|---|---|---|---|---|")
    for r in rows:
        out.append(f"| {r['name']} | {r['proto']} | {r['conns']} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | "
                   f"{r['errors']} |")
    out.append("")
    out.append("| ratio (same run) | protocol | connections | value | target |")
    out.append("|---|---|---|---|---|")
    for label, measured, ceiling, target in RATIOS:
        for proto in ("HTTP/1.1", "h2c"):
            for conns in sorted({r["conns"] for r in rows}):
                m, c = find(rows, measured, proto, conns), find(rows, ceiling, proto, conns)
                if m and c and c["rps"] > 0:
                    value = m["rps"] / c["rps"]
                    shown = target if conns == 32 and proto == "HTTP/1.1" else None
                    out.append(f"| {label} | {proto} | {conns} | {value:.2f} | {verdict(value, shown)} |")
    for label, measured, ceiling, target in P99:
        m, c = find(rows, measured, "HTTP/1.1", 32), find(rows, ceiling, "HTTP/1.1", 32)
        if m and c and c["p99"] > 0:
            value = m["p99"] / c["p99"]
            out.append(f"| {label} | HTTP/1.1 | 32 | {value:.2f} | {verdict(value, target, False)} |")
    out.append("")
    out.append("| other facts | value | target |")
    out.append("|---|---|---|")
    for key, label, target in [
        ("rss_idle_mib", "resident memory, idle after start (MiB)", 32),
        ("anon_idle_mib", "... of which the process's own (anonymous) memory, not code mapped from disk (MiB)", None),
        ("rss_after_load_mib", "resident memory after the load runs (MiB)", None),
        ("anon_after_load_mib", "... of which anonymous (MiB)", None),
        ("rss_filled_mib", "resident memory with the cache and sessions below (MiB)", 64),
        ("anon_filled_mib", "... of which anonymous (MiB)", None),
        ("filled", "validation cache entries / tracked playback sessions at that point", None),
        ("cold", "cold validation: 1,000 concurrent requests, one new token, PMS 100 ms", None),
        ("pms_validations", "PMS validations during the load runs (cache, single-flight)", None),
        ("audit_lines", "audit lines written during the load runs (every elevated decision)", None),
    ]:
        if key in facts:
            value = facts[key]
            check = verdict(float(value), target, False) if target is not None else ""
            out.append(f"| {label} | {value} | {check} |")
    text = "\n".join(out) + "\n"
    print(text)
    if doc != "-":
        begin, end = f"<!-- bench:{mode}:begin -->", f"<!-- bench:{mode}:end -->"
        content = open(doc).read()
        block = f"{begin}\n{text}{end}"
        if begin in content and end in content:
            content = content[: content.index(begin)] + block + content[content.index(end) + len(end):]
        else:
            content = content.rstrip("\n") + f"\n\n## Latest `make bench` run ({mode})\n\n{block}\n"
        open(doc, "w").write(content)


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "wrk":
        print(parse_wrk(*sys.argv[2:6]))
    elif kind == "h2load":
        print(parse_h2load(*sys.argv[2:7]))
    elif kind == "report":
        report(*sys.argv[2:7])
    else:
        sys.exit(__doc__)
