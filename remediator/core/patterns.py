"""IAM's wildcard patterns, matched and compared the way AWS documents them: `*` matches any run of
characters (`/` and `:` included), `?` exactly one; nothing else is special (no `[...]` classes, unlike
fnmatch). Containment of one pattern's language in another's is decided exactly, or not at all (never a
guess): a perimeter Deny earns credit only for what it provably covers.
"""

from __future__ import annotations

import re
from collections import deque
from functools import lru_cache

# Pairs of (position in the inner pattern, positions of the outer one) explored before giving up; real
# resource patterns need a few dozen. Giving up means "not proven", which never earns credit.
STATE_LIMIT = 20000
_OTHER = ""  # stands for every character that neither pattern writes literally


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.DOTALL)


def matches(text: str, pattern: str) -> bool:
    """Whether the literal `text` is in the language of `pattern`."""
    return _regex(pattern).fullmatch(text) is not None


def _closure(pattern: str, positions: set[int]) -> frozenset[int]:
    """Positions reachable without reading a character: a `*` may match nothing."""
    stack = list(positions)
    while stack:
        i = stack.pop()
        if i < len(pattern) and pattern[i] == "*" and i + 1 not in positions:
            positions.add(i + 1)
            stack.append(i + 1)
    return frozenset(positions)


def _step(pattern: str, states: frozenset[int], symbol: str) -> frozenset[int]:
    after: set[int] = set()
    for i in states:
        if i < len(pattern):
            c = pattern[i]
            if c == "*":
                after.add(i)
            elif c == "?" or c == symbol:
                after.add(i + 1)
    return _closure(pattern, after)


@lru_cache(maxsize=8192)
def covers(outer: str, inner: str) -> bool:
    """Whether every string `inner` matches is also matched by `outer` (both IAM wildcard patterns).

    The product of `inner`'s automaton with the subset automaton of `outer`, over the characters either
    writes plus one stand-in for all others (they behave alike: only `?` and `*` match them), is searched
    for a string `inner` accepts and `outer` does not. False when one exists, or when the search would
    exceed STATE_LIMIT (not proven).
    """
    if outer == inner or outer.strip("*") == "" and outer:
        return True
    if "*" not in inner and "?" not in inner:
        return matches(inner, outer)
    alphabet = sorted({c for c in inner + outer if c not in "*?"}) + [_OTHER]
    start = (0, _closure(outer, {0}))
    seen = {start}
    queue = deque([start])
    end_inner, end_outer = len(inner), len(outer)
    while queue:
        position, states = queue.popleft()
        if position == end_inner:
            if end_outer not in states:
                return False  # a string inner matches and outer does not
            continue
        c = inner[position]
        if c == "*":
            moves = [(position + 1, states)] + [(position, _step(outer, states, s)) for s in alphabet]
        elif c == "?":
            moves = [(position + 1, _step(outer, states, s)) for s in alphabet]
        else:
            moves = [(position + 1, _step(outer, states, c))]
        for move in moves:
            if move not in seen:
                if len(seen) >= STATE_LIMIT:
                    return False
                seen.add(move)
                queue.append(move)
    return True
