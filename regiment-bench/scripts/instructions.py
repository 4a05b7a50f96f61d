#!/usr/bin/env python3
"""Instructions per request of each callgrind profile against the first, and the functions
whose own instructions differ most between the first two (see instructions.sh)."""
import collections
import re
import subprocess
import sys


def own_costs(path):
    out = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--threshold=100", path],
        capture_output=True, text=True, check=True,
    ).stdout
    costs = collections.Counter()
    total = 0
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if not m:
            continue
        count = int(m.group(1).replace(",", ""))
        if "PROGRAM TOTALS" in line:
            total = count
            continue
        name = m.group(2).split(" [")[0]
        # "path/to/file.rs:function": keep the function.
        name = re.sub(r"^[^ <]*?\.(rs|c|S):", "", name)
        costs[name] += count
    return total, costs


requests = float(sys.argv[1])
profiles = [(p, *own_costs(p)) for p in sys.argv[2:]]
base_path, base_total, base = profiles[0]
print(f"{'profile':<60} {'instructions/request':>22} {'vs first':>9}")
for path, total, _ in profiles:
    print(f"{path:<60} {total / requests:>22.0f} {total / base_total:>8.3f}x")
_, _, other = profiles[1]
print(f"\nlargest differences, {profiles[1][0]} against {base_path} (own instructions/request):")
diff = {k: other[k] - base[k] for k in set(base) | set(other)}
for name, d in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:30]:
    print(f"{d / requests:+8.0f}  {name[:150]}")
