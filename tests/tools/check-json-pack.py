#!/usr/bin/env python3
"""Static check of jansson json_pack() calls: the number of arguments each
format string consumes must equal the number of arguments passed.  A mismatch
reads garbage varargs at run time (a crash), so it is caught at build time."""
import re
import sys

def consumed(fmt):
    n, i = 0, 0
    while i < len(fmt):
        c = fmt[i]
        if c in 'sIifbFoO':
            n += 1
            if c == 's' and i + 1 < len(fmt) and fmt[i + 1] in '#%':
                n += 1
                i += 1
        i += 1
    return n

def split_args(text):
    depth, cur, out, q = 0, '', [], None
    i = 0
    while i < len(text):
        c = text[i]
        if q:
            cur += c
            if c == '\\':
                cur += text[i + 1]
                i += 1
            elif c == q:
                q = None
        elif c in '"\'':
            q = c
            cur += c
        elif c in '([{':
            depth += 1
            cur += c
        elif c in ')]}':
            depth -= 1
            cur += c
        elif c == ',' and depth == 0:
            out.append(cur.strip())
            cur = ''
        else:
            cur += c
        i += 1
    if cur.strip():
        out.append(cur.strip())
    return out

bad = 0
for path in sys.argv[1:]:
    src = open(path, encoding='utf-8').read()
    for m in re.finditer(r'\bjson_pack\s*\(', src):
        i, depth = m.end(), 1
        while depth and i < len(src):
            depth += {'(': 1, ')': -1}.get(src[i], 0)
            i += 1
        args = split_args(src[m.end():i - 1])
        fmt_parts = re.findall(r'"((?:[^"\\]|\\.)*)"', args[0])
        if not fmt_parts or not re.fullmatch(r'\s*("(?:[^"\\]|\\.)*"\s*)+', args[0]):
            continue  # format is not a literal
        fmt = ''.join(fmt_parts)
        want, got = consumed(fmt), len(args) - 1
        if want != got:
            line = src.count('\n', 0, m.start()) + 1
            print(f'{path}:{line}: json_pack("{fmt}") consumes {want} arguments, {got} given')
            bad += 1
sys.exit(1 if bad else 0)
