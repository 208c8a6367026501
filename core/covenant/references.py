"""The checks across a covenant file: unique ids, references to municipalities, institutions and
teams, coordination rules that can fire. One home for them, whether the file is valid or not.

They read the file through :class:`Part`, a table of the file (the file itself, an institution,
a team, a rule ...) as far as its values are valid. A value with its own problem (a bad e-mail
address, a missing key) reads as :data:`UNKNOWN`, and a check that needs it says nothing: so one
pass over a broken file reports every value problem *and* every broken reference, and never a
reference problem that is only the echo of a value problem.

A valid :class:`~core.covenant.schema.Covenant` is read through the same :class:`Part`
(:meth:`Part.of_model`), so its model validator runs exactly these checks.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from functools import cache
from typing import Any, Final, get_args

from pydantic import BaseModel, TypeAdapter

from core.covenant.problems import CovenantProblem

Loc = tuple[int | str, ...]


class _Unknown(Enum):
    VALUE = "unknown"


UNKNOWN: Final = _Unknown.VALUE
"""A value the file does not give validly; its own problem is reported where it is."""

# The id an item of each list is known by, and what an operator calls such an item.
ITEM_IDS: dict[str, tuple[str, str]] = {
    "signal_codes": ("code", "signaalcode"),
    "municipalities": ("name", "gemeente"),
    "institutions": ("id", "instelling"),
    "professionals": ("email", "hulpverlener"),
    "coordination_rules": ("name", "beslisregel"),
}
_ITEM_PATH = re.compile(r"([a-z_]+)(?:\[(\d+)\])?")
_CONDITIONS = ("municipalities", "min_age", "max_age", "requires_kinds")


@dataclass(frozen=True)
class Part:
    """One table of the covenant file, as far as its values are valid."""

    model: type[BaseModel]
    path: str = ""
    instance: BaseModel | None = None
    raw: Mapping[str, Any] | None = None
    # The locations (relative to this table) of the value problems inside it; () is the table
    # itself (not a table at all).
    errors: tuple[Loc, ...] = ()

    @classmethod
    def of_model(cls, instance: BaseModel, path: str = "") -> Part:
        return cls(type(instance), path, instance=instance)

    @classmethod
    def of_data(
        cls, model: type[BaseModel], data: Any, errors: Iterable[Loc] = (), path: str = ""
    ) -> Part:
        if not isinstance(data, Mapping):
            return cls(model, path, raw={}, errors=((),))
        return cls(model, path, raw=data, errors=tuple(errors))

    @property
    def is_table(self) -> bool:
        return () not in self.errors

    @property
    def has_unknown_keys(self) -> bool:
        """A key the model does not know may be one it does, misspelt (``may_cordinate``)."""
        return any(loc and loc[0] not in self.model.model_fields for loc in self.errors)

    def value(self, name: str) -> Any:
        """The field's validated value, its default when the file leaves it out, or UNKNOWN."""
        if self.instance is not None:
            return getattr(self.instance, name)
        raw = self.raw or {}
        if not self.is_table or any(loc[0] == name for loc in self.errors if loc):
            return UNKNOWN
        field = self.model.model_fields[name]
        if name not in raw:
            if field.is_required() or self.has_unknown_keys:
                return UNKNOWN
            return field.get_default(call_default_factory=True)
        # The field passed validation; this gives its value as the model holds it (trimmed,
        # lowercased).
        return _adapter(self.model, name).validate_python(raw[name])

    def written(self, name: str) -> str | None:
        """The field as a name: the valid value, else the text as written (a broken id still
        names its item, and a reference to it is not unknown)."""
        value = self.value(name)
        if isinstance(value, str):
            return value
        written = (self.raw or {}).get(name)
        return written.strip() if isinstance(written, str) and written.strip() else None

    def given(self, name: str) -> bool:
        """Whether the file sets this (optional) field at all, validly or not."""
        if self.instance is not None:
            return getattr(self.instance, name) is not None
        return name in (self.raw or {})

    def parts(self, name: str) -> list[Part] | None:
        """The tables of an array field; None when the file gives no usable array there."""
        path = f"{self.path}.{name}" if self.path else name
        child = nested_model(self.model.model_fields[name].annotation)
        if child is None:
            raise TypeError(f"{self.model.__name__}.{name} holds no tables")
        if self.instance is not None:
            items = getattr(self.instance, name)
            return [Part.of_model(item, f"{path}[{i}]") for i, item in enumerate(items)]
        raw = self.raw or {}
        if not self.is_table:
            return None
        if name not in raw:
            return None if self.model.model_fields[name].is_required() else []
        items = raw[name]
        if not isinstance(items, list):
            return None
        return [
            Part.of_data(
                child,
                item,
                (loc[2:] for loc in self.errors if loc[:2] == (name, i)),
                f"{path}[{i}]",
            )
            for i, item in enumerate(items)
        ]


@cache
def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    return TypeAdapter(model.model_fields[name].rebuild_annotation())


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside a field's annotation (``tuple[CovenantTeam, ...]`` → the team)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = nested_model(arg)
        if found is not None:
            return found
    return None


# --- locating problems --------------------------------------------------------------------------


def located(problems: Iterable[CovenantProblem], file: Part) -> list[CovenantProblem]:
    """The problems in the order of the file, each naming the item it lies in by its id."""
    sections = list(file.model.model_fields)
    tables: dict[str, list[Part] | None] = {}

    def item_of(problem: CovenantProblem) -> str | None:
        found = _ITEM_PATH.match(problem.path)
        if not found or found.group(2) is None or found.group(1) not in ITEM_IDS:
            return None
        section, index = found.group(1), int(found.group(2))
        if section not in tables:
            tables[section] = file.parts(section)
        items = tables[section] or []
        if index >= len(items):
            return None
        field, what = ITEM_IDS[section]
        written = items[index].written(field)
        return f"{what} '{written}'" if written else None

    def place(problem: CovenantProblem) -> tuple[int, int]:
        found = _ITEM_PATH.match(problem.path)
        if not found:
            return (-1, 0)  # the file as a whole
        section = found.group(1)
        rank = sections.index(section) if section in sections else len(sections)
        return (rank, int(found.group(2) or -1))

    named = [replace(p, item=p.item or item_of(p)) for p in problems]
    return sorted(named, key=place)  # stable: a value problem stays before a reference one


# --- the checks ---------------------------------------------------------------------------------


def reference_problems(file: Part) -> list[CovenantProblem]:
    """Everything that cannot be seen in one value alone."""
    codes = file.parts("signal_codes")
    municipalities = file.parts("municipalities")
    institutions = file.parts("institutions")
    professionals = file.parts("professionals")
    rules = file.parts("coordination_rules")
    return [
        *_duplicates(codes, "code", "signaalcode"),
        *_duplicates(municipalities, "name", "gemeente"),
        *_duplicates(institutions, "id", "instellings-id"),
        *_duplicates(professionals, "email", "e-mailadres"),
        *_duplicates(rules, "name", "beslisregel"),
        *_check_institutions(institutions or [], municipalities),
        *_check_professionals(professionals or [], institutions),
        *_check_rules(rules, institutions, municipalities),
    ]


def _unknown(what: str, value: str, known: Iterable[str], owner: str = "") -> str:
    known = list(known)
    close = difflib.get_close_matches(value, known, n=1) or [
        k for k in known if k.casefold() == value.casefold()
    ]
    hint = f"; bedoelt u '{close[0]}'?" if close else ""
    listing = ", ".join(f"'{k}'" for k in known) or "geen"
    return f"{what} '{value}' bestaat niet{owner}{hint} (bekend: {listing})"


def _duplicates(parts: list[Part] | None, field: str, what: str) -> list[CovenantProblem]:
    """Every value seen before (compared case-insensitively) is a problem at its own path."""
    first_seen: dict[str, str] = {}
    problems = []
    for part in parts or []:
        value = part.value(field)
        if not isinstance(value, str):
            continue  # a broken or missing id has its own problem
        key = value.casefold()
        if key in first_seen:
            problems.append(
                CovenantProblem(
                    f"{part.path}.{field}",
                    f"{what} '{value}' komt dubbel voor (al gebruikt bij {first_seen[key]})",
                )
            )
        else:
            first_seen[key] = part.path
    return problems


def _names(parts: list[Part], field: str) -> list[str]:
    return [name for name in (part.written(field) for part in parts) if name is not None]


def _references(
    part: Part, field: str, known: list[str] | None, what: str, advice: str = ""
) -> list[CovenantProblem]:
    """Each name in the array ``field`` of ``part`` must be one of ``known``."""
    names = part.value(field)
    if known is None or not isinstance(names, tuple):
        return []
    return [
        CovenantProblem(f"{part.path}.{field}[{j}]", _unknown(what, name, known) + advice)
        for j, name in enumerate(names)
        if name not in known
    ]


def _check_institutions(
    institutions: list[Part], municipalities: list[Part] | None
) -> list[CovenantProblem]:
    known = None if municipalities is None else _names(municipalities, "name")
    problems = []
    for institution in institutions:
        problems += _duplicates(institution.parts("teams"), "name", "team")
        problems += _references(
            institution,
            "municipalities",
            known,
            "gemeente",
            "; neem de gemeente eerst op onder [[municipalities]]",
        )
    return problems


def _check_professionals(
    professionals: list[Part], institutions: list[Part] | None
) -> list[CovenantProblem]:
    if institutions is None:
        return []
    # An id used twice has its own problem; a reference to it may mean either institution.
    by_id: dict[str, list[Part]] = {}
    for institution in institutions:
        written = institution.written("id")
        if written is not None:
            by_id.setdefault(written, []).append(institution)
    known = list(by_id)
    problems = []
    for professional in professionals:
        wanted = professional.value("institution")
        if not isinstance(wanted, str):
            continue
        if wanted not in by_id:
            problems.append(
                CovenantProblem(
                    f"{professional.path}.institution", _unknown("instelling", wanted, known)
                )
            )
            continue
        team = professional.value("team")
        teams = [institution.parts("teams") for institution in by_id[wanted]]
        if not isinstance(team, str) or any(found is None for found in teams):
            continue
        names = [name for found in teams for name in _names(found or [], "name")]
        if team not in names:
            owner = f" in instelling '{wanted}'"
            problems.append(
                CovenantProblem(f"{professional.path}.team", _unknown("team", team, names, owner))
            )
    return problems


def _check_rules(
    rules: list[Part] | None, institutions: list[Part] | None, municipalities: list[Part] | None
) -> list[CovenantProblem]:
    if not rules:
        return []
    known = None if municipalities is None else _names(municipalities, "name")
    problems = []
    for rule in rules:
        problems += _references(rule, "municipalities", known, "gemeente")
        problems += _assign_kind(rule, institutions)
    return problems + _fallback(rules)


def _assign_kind(rule: Part, institutions: list[Part] | None) -> list[CovenantProblem]:
    kind = rule.value("assign_kind")
    if not isinstance(kind, str) or institutions is None:
        return []
    coordinating = [
        (institution.value("kind"), institution.value("may_coordinate"))
        for institution in institutions
    ]
    # An institution whose kind or may_coordinate is broken might be the one: say nothing.
    if any(may in (True, UNKNOWN) and found in (kind, UNKNOWN) for found, may in coordinating):
        return []
    kinds = sorted({found for found, may in coordinating if may is True})
    return [
        CovenantProblem(
            f"{rule.path}.assign_kind",
            f"geen instelling van soort '{kind}' heeft may_coordinate = true, dus deze regel "
            "kan nooit iemand aanwijzen (coördinerende soorten: "
            + (", ".join(f"'{k}'" for k in kinds) or "geen")
            + ")",
        )
    ]


def _fallback(rules: list[Part]) -> list[CovenantProblem]:
    """Rules are tried in order and the first match wins: a rule without conditions matches
    everything, so it must be last, and there must be one (every case needs a coordinator)."""
    if not all(rule.is_table and not rule.has_unknown_keys for rule in rules):
        return []  # a broken rule may or may not have conditions; its own problem says so
    fallback = next(
        (r for r, rule in enumerate(rules) if not any(rule.given(c) for c in _CONDITIONS)), None
    )
    if fallback is None:
        return [
            CovenantProblem(
                rules[-1].path,
                f"de laatste regel ({_rule(rules[-1])}) mag geen voorwaarden hebben: die vangt "
                "elk geval op dat de andere regels niet dekken; voeg achteraan een regel toe met "
                "alleen name en assign_kind",
            )
        ]
    return [
        CovenantProblem(
            rule.path,
            f"regel {_rule(rule)} wordt nooit bereikt: regel {_rule(rules[fallback])} bij "
            f"{rules[fallback].path} heeft geen voorwaarden en past op elk geval; zet de regel "
            "zonder voorwaarden achteraan",
        )
        for rule in rules[fallback + 1 :]
    ]


def _rule(rule: Part) -> str:
    name = rule.written("name")
    return f"'{name}'" if name else rule.path
