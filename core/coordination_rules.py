"""The covenant's coordination rules (beslisregels): data from the TOML, evaluated here.

Rules are ordered; the first that matches decides the kind of institution, and the later
matching rules give the next candidates when an institution declines. Every decision says
which rule fired and why, so an assignment can always be explained.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class CoordinationFacts:
    municipality: str
    age: int
    involved_kinds: frozenset[str]


@dataclass(frozen=True)
class RuleDecision:
    rule_name: str
    assign_kind: str
    reason: str
    per_family: bool = True  # False: the youths this rule picks get a coordination of their own


def rule_matches(rule: Any, facts: CoordinationFacts) -> str | None:
    """The Dutch reason the rule applies, or None when it does not."""
    reasons = []
    if rule.municipalities:
        wanted = {m.casefold() for m in rule.municipalities}
        if facts.municipality.casefold() not in wanted:
            return None
        reasons.append(f"gemeente {facts.municipality}")
    if rule.min_age is not None or rule.max_age is not None:
        low = rule.min_age if rule.min_age is not None else 0
        high = rule.max_age if rule.max_age is not None else 22
        if not low <= facts.age <= high:
            return None
        reasons.append(f"leeftijd {facts.age} ({low}–{high} jaar)")
    if rule.requires_kinds:
        missing = set(rule.requires_kinds) - facts.involved_kinds
        if missing:
            return None
        reasons.append("betrokken: " + ", ".join(sorted(rule.requires_kinds)))
    return "; ".join(reasons) or "algemene regel (geen voorwaarden)"


def matching_rules(rules: Sequence[Any], facts: CoordinationFacts) -> list[RuleDecision]:
    decisions = []
    for rule in rules:
        reason = rule_matches(rule, facts)
        if reason is not None:
            decisions.append(RuleDecision(rule.name, rule.assign_kind, reason, rule.per_family))
    return decisions


class CoordinatingParty(Protocol):
    """What ranking needs of an institution: a database row or a covenant entry alike (the
    covenant check ranks by a covenant not yet mirrored)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def may_coordinate(self) -> bool: ...
    @property
    def municipalities(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class Candidate:
    institution_id: str
    rule_name: str
    reason: str


def ruled_candidates(
    rules: Sequence[Any],
    facts: CoordinationFacts,
    institutions: Iterable[CoordinatingParty],
    involved: Sequence[str],
) -> list[Candidate]:
    """The institutions the rules pick for a youth with ``facts``, in order: per matching rule,
    those of its kind that may coordinate, involved ones first, then those serving the youth's
    municipality. ``institutions`` are the covenant's (active) parties."""
    parties = list(institutions)
    result = []
    for decision in matching_rules(rules, facts):
        of_kind = [i for i in parties if i.kind == decision.assign_kind and i.may_coordinate]
        here = facts.municipality
        ranked = [i for i in of_kind if i.id in involved] + [
            i for i in of_kind if i.id not in involved and here in i.municipalities
        ]
        for institution in ranked:
            where = "betrokken" if institution.id in involved else f"werkt in {here}"
            result.append(
                Candidate(
                    institution.id,
                    decision.rule_name,
                    f"{decision.reason}; {institution.name} ({where})",
                )
            )
    return result
