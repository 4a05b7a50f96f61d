#!/usr/bin/env python3
"""Import circles among the files of a crate: files that import each other in a loop.

Usage: regiment-bench/scripts/import_cycles.py regiment-core/src   (EDGES=1 also prints each
file's imports)
A file imports another when it names an item through `crate::`, `super::` or `self::`
paths (in `use` or inline) that resolves to that file's module. A `mod x;` declaration
is not an import; an item re-exported by `pub use` counts as the file that defines it, and
paths inside an inline `mod tests { .. }` are relative to it. Prints each strongly connected
component of more than one file. Text-based (regexes over the sources): a reading aid, not a
compiler.
"""
import os, re, sys

root = sys.argv[1].rstrip('/')
files = {}
for dp, _, fns in os.walk(root):
    for fn in fns:
        if fn.endswith('.rs'):
            p = os.path.join(dp, fn)
            rel = os.path.relpath(p, root)[:-3].split(os.sep)
            if rel[-1] in ('mod',):
                rel = rel[:-1]
            if rel == ['lib']:
                rel = []
            files[tuple(rel)] = os.path.relpath(p, root)

# inline `#[path]`-less modules only; tests dirs included (they are files too).
def resolve(mod, parts):
    """Longest prefix of mod+parts that is a file."""
    full = list(mod) + parts
    for n in range(len(full), -1, -1):
        if tuple(full[:n]) in files:
            if n < len(full) and (tuple(full[:n]), full[n]) in reexport:
                return reexport[(tuple(full[:n]), full[n])]
            return tuple(full[:n])
    return None

def expand_use(tree):
    """Expand a use tree string like a::{b, c::{d, e}} into paths."""
    tree = tree.strip()
    if '{' not in tree:
        return [tree.split(' as ')[0].strip()]
    i = tree.index('{')
    prefix = tree[:i]
    inner = tree[i+1:tree.rindex('}')]
    parts, depth, cur = [], 0, ''
    for ch in inner:
        if ch == '{': depth += 1
        if ch == '}': depth -= 1
        if ch == ',' and depth == 0:
            parts.append(cur); cur = ''
        else:
            cur += ch
    parts.append(cur)
    out = []
    for p in parts:
        if p.strip():
            for e in expand_use(p):
                out.append(prefix + e)
    return out

def cleaned(path):
    """The file's source without comments, and `pub(in crate::a::b)` (a visibility, which
    imports nothing) read as `pub`."""
    src = re.sub(r'//[^\n]*', '', open(os.path.join(root, path)).read())
    return re.sub(r'pub\(in [^)]*\)', 'pub', src)

sources = {mod: cleaned(path) for mod, path in files.items()}

def target_of(here, p):
    """The file that the path `p`, written in module `here`, names; None outside the crate."""
    segs = [s for s in p.replace(' ', '').split('::') if s]
    if not segs:
        return None
    base = list(here)
    if segs[0] == 'crate':
        base, segs = [], segs[1:]
    elif segs[0] in ('super', 'self'):
        while segs and segs[0] in ('super', 'self'):
            if segs[0] == 'super':
                base = base[:-1]
            segs = segs[1:]
    elif tuple(list(here) + [segs[0]]) in files:
        pass  # a child module named without `self::`
    else:
        return None
    segs = [s for s in segs if s != '*']
    return resolve(base, segs)

# `pub use` re-exports, followed through a few levels (a re-export of a re-export).
reexport = {}
for _ in range(3):
    for mod, src in sources.items():
        for m in re.finditer(r'\bpub(?:\([^)]*\))?\s+use\s+([^;]+);', src, re.S):
            for p in expand_use(' '.join(m.group(1).split())):
                name = p.split(' as ')[-1].split('::')[-1].strip()
                t = target_of(mod, p.split(' as ')[0])
                if t is not None and t != mod:
                    reexport[(mod, name)] = t

edges = {k: set() for k in files}
for mod, src in sources.items():
    # inline `mod name { ... }` blocks: paths inside them are relative to mod + [name]
    inline = []
    for m in re.finditer(r'\bmod\s+(\w+)\s*\{', src):
        depth, j = 1, m.end()
        while depth and j < len(src):
            depth += {'{': 1, '}': -1}.get(src[j], 0); j += 1
        inline.append((m.start(), j, m.group(1)))
    def scope(pos):
        return list(mod) + [n for a, b, n in inline if a <= pos < b]
    paths = []
    for m in re.finditer(r'\buse\s+([^;]+);', src, re.S):
        paths += [(scope(m.start()), p) for p in expand_use(' '.join(m.group(1).split()))]
    paths += [(scope(m.start()), m.group(1)) for m in re.finditer(r'(?<![:\w])((?:\w+)(?:::\w+)+)', src)]
    for here, p in paths:
        t = target_of(here, p)
        if t is not None and t != mod:
            edges[mod].add(t)

# Tarjan
index, low, stack, on, sccs, i = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def strong(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        sccs.append(comp)
for v in files:
    if v not in index:
        strong(v)
big = [c for c in sccs if len(c) > 1]
tests = lambda c: all('tests' in files[m] or 'test' in files[m] for m in c)
print(f"{len(big)} circles ({sum(len(c) for c in big)} files)")
for c in sorted(big, key=len, reverse=True):
    print(f"  {len(c)} files: " + ', '.join(sorted(files[m] for m in c)))
if os.environ.get('EDGES'):
    for k, v in sorted(edges.items()):
        print(files[k], '->', ', '.join(sorted(files[t] for t in v)))
