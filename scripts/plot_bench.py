#!/usr/bin/env python3
"""Plot the `compare` binary's CSV as an SVG bar chart, with no dependencies.

    cargo run -p raft-bench --release --bin compare -- --csv target/bench.csv
    python3 scripts/plot_bench.py target/bench.csv docs/bench-throughput.svg

The chart shows committed-and-applied entries per second on the leader for each round
size, raft-core beside raft-rs, with the ratio above each pair, and the floor program
(the data movement alone, no protocol) when the CSV has it.
"""

import csv
import sys
from xml.sax.saxutils import escape

COLORS = {"raft-core": "#2b6cb0", "raft-rs": "#c05621", "floor": "#a0aec0"}
W, H = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 80, 20, 50, 60


def load(path):
    """Returns {library: {round: entries_per_sec}} from the CSV."""
    data = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["metric"] == "entries_per_sec":
                data.setdefault(row["library"], {})[int(row["round"])] = float(row["value"])
    if not data:
        sys.exit(f"{path}: no entries_per_sec rows")
    return data


def nice_max(v):
    """A round axis maximum at or above v."""
    step = 10 ** (len(str(int(v))) - 1)
    return ((int(v) // step) + 1) * step


def svg(data, title):
    libs = [lib for lib in COLORS if lib in data] + sorted(set(data) - set(COLORS))
    rounds = sorted({r for series in data.values() for r in series})
    ymax = nice_max(max(v for s in data.values() for v in s.values()))
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def y(v):
        return TOP + ph - ph * v / ymax

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="15">{escape(title)}</text>',
    ]
    for k in range(6):
        v = ymax * k / 5
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v / 1e6:.2f}M</text>')
    out.append(
        f'<text x="18" y="{TOP + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {TOP + ph / 2})">entries/s applied on the leader</text>'
    )
    group = pw / len(rounds)
    bar = group * 0.7 / len(libs)
    for gi, r in enumerate(rounds):
        x0 = LEFT + gi * group + group * 0.15
        for li, lib in enumerate(libs):
            v = data[lib].get(r)
            if v is None:
                continue
            x = x0 + li * bar
            out.append(
                f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar - 2:.1f}" height="{TOP + ph - y(v):.1f}" '
                f'fill="{COLORS.get(lib, "#666")}"><title>{escape(lib)} round {r}: {v:.0f} entries/s</title></rect>'
            )
            out.append(f'<text x="{x + bar / 2:.1f}" y="{y(v) - 4:.1f}" text-anchor="middle" font-size="10">{v / 1e6:.2f}M</text>')
        if "raft-core" in data and "raft-rs" in data and r in data["raft-core"] and r in data["raft-rs"]:
            ratio = data["raft-core"][r] / data["raft-rs"][r]
            top = y(max(data["raft-core"][r], data["raft-rs"][r]))
            out.append(f'<text x="{x0 + group * 0.35:.1f}" y="{top - 18:.1f}" text-anchor="middle" font-weight="bold">{ratio:.2f}x</text>')
        out.append(f'<text x="{x0 + group * 0.35:.1f}" y="{TOP + ph + 18}" text-anchor="middle">{r} per round</text>')
    out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{TOP + ph}" y2="{TOP + ph}" stroke="black"/>')
    for li, lib in enumerate(libs):
        lx = LEFT + li * 120
        out.append(f'<rect x="{lx}" y="{H - 22}" width="12" height="12" fill="{COLORS.get(lib, "#666")}"/>')
        out.append(f'<text x="{lx + 18}" y="{H - 12}">{escape(lib)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit("usage: plot_bench.py BENCH.csv OUT.svg [TITLE]")
    title = argv[3] if len(argv) == 4 else "3 nodes in one process, 16-byte entries: throughput by round size"
    with open(argv[2], "w") as f:
        f.write(svg(load(argv[1]), title))


if __name__ == "__main__":
    main(sys.argv)
