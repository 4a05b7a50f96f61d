#!/usr/bin/env python3
"""What the service wrapper's own code costs a request, by what its instructions are for.

    python3 regiment-bench/scripts/attribute.py REQUESTS PROFILE BINARY

PROFILE is a callgrind profile written with --dump-instr=yes (compare_builds.sh writes them so),
of BINARY serving REQUESTS requests; BINARY has line tables (the release profile keeps them).
Every instruction executed in the wrapper's functions (hyper's `HttpService::call`, into which
the wrapper's `call` is inlined, and the `InFlight` of connection_close.rs, start and drop) is
given to what the chain of functions inlined at its address (addr2line -i) says it does:

  latency  the latency buckets: `latency::now_ns`, `Histogram::record_ns`
  listing  the in-flight table: `worker::in_flight`, and the method, path and version read for it
  rest     everything else: the counters, the drain's checks, the frame, spills, moves

Unlike the totals of compare_builds.sh, these counts do not move with how the compiler happened
to inline hyper's own code in one build or another: compare two builds function by function.
Also printed: glibc's clock_gettime (a system call under valgrind, whose kernel part is not
counted).
"""
import collections
import re
import subprocess
import sys

FUNCTIONS = ("as hyper::service::http::HttpService", "regiment_axum::connection_close::InFlight")
CLASSES = (
    ("latency", re.compile(r"latency::now_ns|latency::Histogram|latency::bucket_of")),
    # The version read for the listing is read in the wrapper's `call` itself; the one
    # `RequestKind::of` reads is the rest's.
    ("listing", re.compile(
        r"worker::in_flight::|Uri::path|PathAndQuery::path"
        r"|Request<T>::version \| <regiment_axum::connection_close::ConnectionClose"
    )),
)


def own_costs(profile, wanted):
    """Instructions executed at each address of the functions whose names hold one of `wanted`,
    and the calls to clock_gettime, from a callgrind profile with instruction positions."""
    names, costs, clock = {}, collections.Counter(), 0
    function, last, call_line, callee = None, 0, False, None
    for line in open(profile):
        line = line.rstrip("\n")
        if not line:
            continue
        named = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
        if named:
            kind, number, name = named.groups()
            if name:
                names[number] = name
            if kind == "fn":
                function = names.get(number, "")
            else:
                callee = names.get(number, "")
            continue
        if line.startswith("calls="):
            call_line = True
            continue
        if not (line[0].isdigit() or line[0] in "+-*"):
            continue
        fields = line.split()
        token = fields[0]
        address = last if token == "*" else last + int(token, 0) if token[0] in "+-" else int(token, 0)
        last = address
        if call_line:
            # The inclusive cost of a call: only clock_gettime's is wanted.
            call_line = False
            ours = function and any(w in function for w in wanted)
            if ours and callee and callee.startswith("clock_gettime") and len(fields) >= 3:
                clock += int(fields[2])
            continue
        if len(fields) >= 3 and function and any(w in function for w in wanted):
            costs[address] += int(fields[2])
    return costs, clock


def inline_chains(binary, addresses):
    """For each address, the functions inlined there, innermost first."""
    out = subprocess.run(
        ["addr2line", "-e", binary, "-f", "-C", "-i", "-a"] + [hex(a) for a in addresses],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    chains, current, i = {}, None, 0
    while i < len(out):
        if out[i].startswith("0x"):
            current = int(out[i], 16)
            chains[current] = []
            i += 1
        else:
            chains[current].append(out[i])
            i += 2  # the function, then its file:line
    return chains


def main():
    requests, profile, binary = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    costs, clock = own_costs(profile, FUNCTIONS)
    chains = inline_chains(binary, sorted(costs))
    totals = collections.Counter()
    for address, cost in costs.items():
        chain = " | ".join(chains.get(address, []))
        kind = next((name for name, pattern in CLASSES if pattern.search(chain)), "rest")
        totals[kind] += cost
    for kind in ("latency", "listing", "rest"):
        print(f"{kind:14} {totals[kind] / requests:8.1f}")
    print(f"{'clock_gettime':14} {clock / requests:8.1f}")
    print(f"{'total':14} {(sum(totals.values()) + clock) / requests:8.1f}")


if __name__ == "__main__":
    main()
