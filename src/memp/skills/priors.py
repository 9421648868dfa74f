"""Search priors: where each entity type was seen, by place type, in past trajectories.

A skill looking for ``{object}`` goes first to the kinds of place where things of
that type were found before, and prefers places it need not open. Types never seen
borrow the counts of the most similar known types (by embedding).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from memp.skills.text import Mentions
from memp.template import normalize
from memp.types import ProgramPriors, Trajectory

if TYPE_CHECKING:
    from memp.embed.base import Embedder
    from memp.envs.base import ActionSemantics


@dataclass
class Priors:
    """Counts of entity type seen at place type, and how often a place needed revealing."""

    found: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    visits: Counter[str] = field(default_factory=Counter)
    reveals: Counter[str] = field(default_factory=Counter)
    reveal_templates: set[str] = field(default_factory=set)
    embedder: Embedder | None = None
    _similar: dict[str, list[tuple[str, float]]] = field(default_factory=dict, repr=False)

    def observe(self, trajectory: Trajectory, semantics: ActionSemantics) -> None:
        mentions = Mentions(semantics)
        place: str | None = None
        for step in trajectory.steps:
            a, o = step.action, step.observation
            if semantics.is_navigation(a):
                loc = semantics.location(a)
                place = normalize(loc) if loc else None
                if place:
                    self.visits[mentions.type_of(place)] += 1
            elif semantics.failed(a, o) or semantics.is_noop(a):
                continue
            seen = mentions.observe(a, o)
            if place is None:
                continue
            ptype = mentions.type_of(place)
            if (
                seen
                and not semantics.is_navigation(a)
                and normalize(semantics.location(a) or "") == place
            ):
                self.reveals[ptype] += 1
            for name in seen:
                if name != place:
                    self.found[mentions.type_of(name)][ptype] += 1

    def record(self) -> ProgramPriors:
        """The counts as stored with a program."""
        return ProgramPriors(
            found={k: dict(v) for k, v in self.found.items()},
            visits=dict(self.visits),
            reveals=dict(self.reveals),
        )

    def merge(self, data: ProgramPriors) -> None:
        for etype, places in data.found.items():
            self.found[etype].update(places)
        self.visits.update(data.visits)
        self.reveals.update(data.reveals)
        self._similar.clear()

    def _neighbours(self, etype: str) -> list[tuple[str, float]]:
        # An unseen type borrows the distributions of the most similar known types.
        if etype in self._similar:
            return self._similar[etype]
        out: list[tuple[str, float]] = []
        known = sorted(self.found)
        if self.embedder is not None and known:
            vecs = self.embedder.embed([etype, *known])
            sims = vecs[1:] @ vecs[0]
            order = sorted(range(len(known)), key=lambda i: -float(sims[i]))[:3]
            out = [(known[i], float(sims[i])) for i in order if sims[i] > 0.3]
        self._similar[etype] = out
        return out

    def score(self, etype: str, ptype: str) -> float:
        """How promising a place type is for an entity type (higher is better)."""
        # where things in general were found (not where the expert happened to walk)
        held = sum(d.get(ptype, 0) for d in self.found.values())
        base = (held + 1) / (sum(sum(d.values()) for d in self.found.values()) + 1)
        dists = [(etype, 1.0)] if etype in self.found else self._neighbours(etype)
        p = wsum = 0.0
        for t, w in dists:
            total = sum(self.found[t].values())
            if total:
                p += w * self.found[t].get(ptype, 0) / total
                wsum += w
        # the small base term orders places never seen holding anything
        return (p / wsum if wsum else 0.0) + 0.05 * base

    def cost(self, ptype: str) -> float:
        visits = self.visits.get(ptype, 0)
        return 1.0 + (self.reveals.get(ptype, 0) / visits if visits else 0.5)
