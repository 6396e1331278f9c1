#!/usr/bin/env python3
"""Prints the issue 12 item 3 table from scripts/scale-bench.sh's JSON lines."""
import glob, json, os, sys

out = sys.argv[1] if len(sys.argv) > 1 else "target/scale-bench"
runs = {}
for f in glob.glob(os.path.join(out, "n*-*-r*.json")):
    name = os.path.basename(f)[:-5]
    n, links, rate = name.split("-")
    with open(f) as fh:
        runs[(int(n[1:]), links, int(rate[1:]))] = json.load(fh)

print("| N | links | finalised/s at saturation (offered) | p50 / p99 at 1,000/s | blocks/s at 1,000/s | bytes sent per block per node (per attestation) | gossip messages per block per node | node CPU per attestation at 1,000/s (× batched check) | at saturation (×) | p50 / p99 at 100/s |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (n, links) in sorted({(k[0], k[1]) for k in runs}):
    sat = [r for (kn, kl, rate), r in runs.items() if kn == n and kl == links and rate > 1000]
    light = runs.get((n, links, 100))
    one = runs.get((n, links, 1000))
    cells = [str(n), links]
    if sat:
        s = sat[0]
        cells.append(f"{s['finalized_per_s']:,.0f} ({s['load']['submitted_per_s']:,.0f}/s offered)")
    else:
        cells.append("–")
    if one:
        blocks = one["load"].get("blocks") or 0
        span = one["load"].get("window_s") or 0
        cells.append(f"{one['p50_ms']:.0f} / {one['p99_ms']:.0f} ms")
        cells.append(f"{blocks / span:.0f}" if blocks and span else "?")
        sent = [n["traffic"]["bytes_sent"] for n in one["nodes"]]
        per_tx = sum(sent) / len(sent) / one["load"]["finalized"] if one["load"]["finalized"] else float("nan")
        cells.append(f"{one['bytes_sent_per_block_per_node']:,.0f} ({per_tx:,.0f})")
        cells.append(f"{one['messages_per_block_per_node']:.0f}")
        cells.append(f"{one['node_cpu_us_per_tx']:.0f} µs ({one['node_cpu_vs_batched_check']:.1f}×)")
    else:
        cells += ["–"] * 5
    if sat:
        s = sat[0]
        cells.append(f"{s['node_cpu_us_per_tx']:.0f} µs ({s['node_cpu_vs_batched_check']:.1f}×)")
    else:
        cells.append("–")
    cells.append(f"{light['p50_ms']:.0f} / {light['p99_ms']:.0f} ms" if light else "–")
    print("| " + " | ".join(cells) + " |")
ref = [r["reference"] for r in runs.values()]
if ref:
    b = sorted(x["batched_us"] for x in ref)
    print(f"\nreference (batched check per signature): {b[0]:.1f}–{b[-1]:.1f} µs over {len(ref)} runs")
