"""Forcing an answer into a list of admissible choices.

``choices_gbnf`` builds a llama.cpp GBNF grammar that accepts exactly one of the
strings. The alternation is factored through a character trie, so long lists of
actions sharing prefixes ("go to cabinet 1", "go to cabinet 2", ...) stay small and
the grammar sampler tracks a few stacks instead of one per choice.
``nearest_choice`` maps free text onto a choice for backends without grammars.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence


def gbnf_literal(text: str) -> str:
    """A GBNF string literal for ``text`` with quotes, backslashes and controls escaped."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_END = ""  # trie key marking "a choice ends here"


def _trie(choices: Sequence[str]) -> dict:
    root: dict = {}
    for c in choices:
        node = root
        for ch in c:
            node = node.setdefault(ch, {})
        node[_END] = {}
    return root


def choices_gbnf(choices: Sequence[str]) -> str:
    """GBNF grammar whose language is exactly ``choices`` (non-empty strings)."""
    if not choices:
        raise ValueError("choices must not be empty")
    rules: list[str] = []

    def expr(node: dict) -> str:
        # Collapse single-child chains into one literal; each branch point becomes a rule.
        alts: list[str] = []
        for ch, child in node.items():
            if ch == _END:
                continue
            run = ch
            while len(child) == 1 and _END not in child:
                ((nxt, child),) = child.items()
                run += nxt
            rest = "" if child == {_END: {}} else " " + expr(child)
            alts.append(gbnf_literal(run) + rest)
        optional = _END in node  # a choice ends here and longer ones continue
        if len(alts) == 1 and not optional:
            return alts[0]
        body = "(" + " | ".join(alts) + ")?" if optional else " | ".join(alts)
        rules.append(f"n{len(rules)} ::= {body}")
        return f"n{len(rules) - 1}"

    body = expr(_trie(choices))
    return "\n".join([f"root ::= {body}", *rules]) + "\n"


def nearest_choice(text: str, choices: Sequence[str]) -> str:
    """The choice the free-text answer most plausibly meant."""
    t = text.strip().strip("`'\"").strip()
    first = t.splitlines()[0].strip() if t else ""
    for cand in (t, first):
        if cand in choices:
            return cand
    low = {c.lower(): c for c in choices}
    for cand in (t.lower(), first.lower(), first.lower().rstrip(".")):
        if cand in low:
            return low[cand]
    # The longest choice quoted verbatim inside the answer ("I will go to cabinet 2.").
    inside = [c for c in choices if c.lower() in t.lower()]
    if inside:
        return max(inside, key=len)
    return max(
        choices, key=lambda c: difflib.SequenceMatcher(None, c.lower(), first.lower()).ratio()
    )
