"""Task templates: a task with its entities masked.

"put a hot potato in countertop" -> key "put a hot {object} in {target}", binding
{"object": "potato", "target": "countertop"}. Retrieval keys on the template (raw task
text confuses "hot potato" with "cool potato"; the masked form does not), and a new
task's slots are bound by aligning its text with a stored template.

Entities are found from what the environment reported (the types of the instances a
trajectory touched or saw), never from a hand-written list of object names.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_SLOT = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_WORD = re.compile(r"[a-z0-9]+")


def normalize(task: str) -> str:
    """Lower-case, one space between words, no trailing punctuation."""
    text = " ".join(task.lower().split())
    return text.strip(" .!?;:")


def slot_names(n: int) -> list[str]:
    """Slot names by order of appearance: object, [object2, ...], target."""
    if n <= 0:
        return []
    if n == 1:
        return ["object"]
    return ["object", *[f"object{i}" for i in range(2, n)], "target"]


def _find_phrases(text: str, phrases: Iterable[str]) -> list[tuple[int, int, str]]:
    """Non-overlapping whole-word occurrences of ``phrases`` in ``text``, longest first."""
    taken: list[tuple[int, int, str]] = []
    for phrase in sorted({normalize(p) for p in phrases if p and p.strip()}, key=len, reverse=True):
        for m in re.finditer(rf"(?<![a-z0-9]){re.escape(phrase)}(?![a-z0-9])", text):
            s, e = m.span()
            if all(e <= ts or s >= te for ts, te, _ in taken):
                taken.append((s, e, phrase))
    return sorted(taken)


def mask(task: str, entities: Iterable[str]) -> tuple[str, dict[str, str]]:
    """Replace the entity phrases found in ``task`` by slots.

    The same phrase twice gets the same slot. Returns (key, binding slot -> phrase).
    """
    text = normalize(task)
    spans = _find_phrases(text, entities)
    order: list[str] = []
    for _, _, phrase in spans:
        if phrase not in order:
            order.append(phrase)
    names = dict(zip(order, slot_names(len(order)), strict=True))
    out, last = [], 0
    for s, e, phrase in spans:
        out.append(text[last:s])
        out.append("{" + names[phrase] + "}")
        last = e
    out.append(text[last:])
    return "".join(out), {slot: phrase for phrase, slot in names.items()}


def slots_of(key: str) -> list[str]:
    seen: list[str] = []
    for name in _SLOT.findall(key):
        if name not in seen:
            seen.append(name)
    return seen


def fill(key: str, binding: dict[str, str]) -> str:
    return _SLOT.sub(lambda m: binding.get(m.group(1), m.group(0)), key)


def _key_regex(key: str) -> re.Pattern[str]:
    parts, last, used = [], 0, set()
    for m in _SLOT.finditer(key):
        parts.append(re.escape(key[last : m.start()]))
        name = m.group(1)
        # a repeated slot must repeat the same text
        parts.append(f"(?P={name})" if name in used else f"(?P<{name}>.+?)")
        used.add(name)
        last = m.end()
    parts.append(re.escape(key[last:]))
    return re.compile("^" + "".join(parts) + "$")


def align(task: str, key: str) -> dict[str, str] | None:
    """Bind ``key``'s slots by aligning it with ``task``; None when they do not align."""
    m = _key_regex(normalize(key)).match(normalize(task))
    if m is None:
        return None
    binding = {k: v.strip() for k, v in m.groupdict().items()}
    return binding if all(binding.values()) else None


def _overreach(value: str, known: set[str]) -> bool:
    # "clean apple" bound to {object} while "apple" is a known entity: the template
    # swallowed a word that belongs to another template ("put a clean {object} ...").
    return value not in known and bool(_find_phrases(value, known))


@dataclass(frozen=True)
class KeyMatch:
    key: str
    binding: dict[str, str] | None  # None for an approximate match (slots still unbound)
    score: float
    exact: bool


def literal_len(key: str) -> int:
    return len(_SLOT.sub("", key))


def match_key(
    task: str,
    keys: Sequence[str],
    *,
    known_entities: Iterable[str] = (),
    approximate: bool = False,
    min_score: float = 0.85,
) -> KeyMatch | None:
    """The stored template that fits ``task`` best.

    Exact alignment first; among several aligned keys the most specific wins (more
    literal text, bound values that are known entity names). Otherwise, if
    ``approximate``, the key whose literal words overlap the task's most, words
    weighted by rarity across keys (so "hot" counts more than "put"), with the same
    number of slots as the task has known entities.
    """
    known = {normalize(e) for e in known_entities}
    best: KeyMatch | None = None
    best_rank: tuple[float, ...] = ()
    for key in dict.fromkeys(keys):
        binding = align(task, key)
        if binding is None or any(_overreach(v, known) for v in binding.values()):
            continue
        known_hits = sum(v in known for v in binding.values())
        rank = (known_hits - len(binding), literal_len(key))
        if best is None or rank > best_rank:
            best, best_rank = KeyMatch(key, binding, 1.0, True), rank
    if best is not None or not approximate:
        return best
    task_binding = mask(task, known)[1]
    scored = rank_keys(task, keys, known_entities=known)
    if not scored:
        return None
    score, key = max(scored)
    if score < min_score:
        return None
    # slots are named by order of appearance, so the task's own masking lines up
    binding = task_binding if set(task_binding) == set(slots_of(key)) else None
    return KeyMatch(key, binding, score, False)


def rank_keys(
    task: str, keys: Sequence[str], *, known_entities: Iterable[str] = ()
) -> list[tuple[float, str]]:
    """Templates with as many slots as ``task`` has known entities, most similar first.

    The score mostly measures how much of the task's wording a template covers, each
    word weighted by how rare it is among the templates (a missing "clean" costs more
    than a missing "a"); word-set overlap breaks near-ties.
    """
    known = {normalize(e) for e in known_entities}
    task_key, task_binding = mask(task, known)
    words_of = {k: set(_WORD.findall(_SLOT.sub(" ", k))) for k in dict.fromkeys(keys)}
    if not words_of:
        return []
    df = Counter(w for ws in words_of.values() for w in ws)
    n = len(words_of)

    def idf(w: str) -> float:
        return math.log(1 + n / df[w]) if df.get(w) else math.log(1 + n)

    task_words = set(_WORD.findall(_SLOT.sub(" ", task_key)))
    total = sum(idf(w) for w in task_words) or 1.0
    scored: list[tuple[float, str]] = []
    for key, ws in words_of.items():
        if len(slots_of(key)) != len(task_binding):
            continue
        inter = sum(idf(w) for w in ws & task_words)
        union = sum(idf(w) for w in ws | task_words) or 1.0
        scored.append((0.7 * inter / total + 0.3 * inter / union, key))
    return sorted(scored, reverse=True)


# A key as tokens: slots, words (with inner "-", ".", "'": "non-living", "150.0") and
# single punctuation marks, each with the whitespace before it.
_TOKEN = re.compile(r"(\s*)(\{[a-z_][a-z0-9_]*\}|[a-z0-9]+(?:[-.'][a-z0-9]+)*|\S)")


def _tokens(key: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _TOKEN.finditer(key)]


def induce(keys: Sequence[str], *, keep: float = 0.75) -> str | None:
    """One template for keys of the same task type that differ in their parameters.

    The variations of a task type share its wording and differ where a parameter goes
    ("move it to the red box" / "... the green box"): what every key says at the same
    place stays literal, the rest becomes a slot. A stretch that differs the same way
    twice (one parameter named twice) gets one slot. Slots are renamed by order of
    appearance, as :func:`mask` names them. None when there is nothing to generalise
    (fewer than two different keys) or when the keys share too little wording (less
    than ``keep`` of the first key's words): "put a {object} in {target}" and "put
    some {object} on {target}" are two phrasings, not one template with parameters.
    """
    distinct = list(dict.fromkeys(normalize(k) for k in keys))
    if len(distinct) < 2:
        return None
    ref = _tokens(distinct[0])
    words = [t for _, t in ref]
    common = [True] * len(ref)
    for other in distinct[1:]:
        theirs = [t for _, t in _tokens(other)]
        same = [False] * len(ref)
        for op, i1, i2, _j1, _j2 in difflib.SequenceMatcher(
            None, words, theirs, autojunk=False
        ).get_opcodes():
            if op == "equal":
                same[i1:i2] = [True] * (i2 - i1)
            elif op == "insert":
                # a parameter the reference lacks: the token after it joins the slot
                same[min(i1, len(ref) - 1)] = False
        common = [c and s for c, s in zip(common, same, strict=True)]
    literal = [i for i, (_, t) in enumerate(ref) if not _SLOT.fullmatch(t) and _WORD.fullmatch(t)]
    if not literal or sum(common[i] for i in literal) < keep * len(literal):
        return None
    # a differing stretch next to a slot is one parameter with it (no two slots touch)
    for i, (_, tok) in enumerate(ref):
        if _SLOT.fullmatch(tok) and (
            (i > 0 and not common[i - 1]) or (i + 1 < len(ref) and not common[i + 1])
        ):
            common[i] = False
    # (space before, identity): a kept slot is its own name, a differing stretch its text
    parts: list[tuple[str, str, bool]] = []  # (space before, token or gap text, is a slot)
    i = 0
    while i < len(ref):
        space, tok = ref[i]
        if common[i]:
            parts.append((space, tok, bool(_SLOT.fullmatch(tok))))
            i += 1
            continue
        j = i
        while j < len(ref) and not common[j]:
            j += 1
        parts.append((space, "".join(s + t for s, t in ref[i:j]).strip(), True))
        i = j
    order = list(dict.fromkeys(tok for _, tok, slot in parts if slot))
    names = dict(zip(order, slot_names(len(order)), strict=True))
    return "".join(s + ("{" + names[t] + "}" if slot else t) for s, t, slot in parts).strip()
