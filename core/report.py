"""Follow-up figures for a municipality or the whole region over a period (issue 11.9; the
municipality checks the follow-up of matches, Jeugdwet 7.1.3.2): ``verwijsindex report`` and the
monthly report mail (core.report_mail) print what :func:`follow_up_report` computes.

Only aggregates leave this module, and only through :func:`shown` and the two functions built on
it: small numbers identify children, so any count under 5 is ``<5``, and a share or median taken
over fewer than 5 cases, or that would give away a count under 5, is ``—`` (the report says so).
In a breakdown with a total, a single ``<5`` could be worked out from the others; then the next
smallest cell is hidden too (complementary suppression).

Where the figures come from, and why:

* **Signals placed, ended, withdrawn** — from the logboek (``signal-placed``, ``signal-archived``,
  ``signal-deleted``): a signal withdrawn as unjustified is deleted from the index (DOMAIN:
  Lifetime), so only the logboek still knows it happened. Its code, institution and youth are
  those of its ``signal-placed`` event.
* **Matches and their follow-up** — from the match tables: a match is followed up when every
  partner confirmed contact (``CONTACT GELEGD``), as the follow-up sweep (core.follow_up) decides
  whether to escalate; days to contact run from the match to the last confirmation.
* **Coordinations** — from the logboek, because a coordination row keeps only its current round:
  each assignment (also after a decline or hand-over), acceptance, decline and escalation. An
  acceptance is within the deadline when it came within the response time, in working days
  (core.working_days), of the assignment it accepted, and no escalation came between.
* **Informing** — the signals placed in the period that the index still holds, by their current
  ``informed`` value (so informing recorded later counts).

A youth counts for the municipality the index has for it now; what belonged to a youth who has
since been purged (23rd birthday) still counts for the region, no longer for a municipality.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlmodel import Session, col, select

from core import audit
from core.clock import as_utc, local_date, start_of_local_day
from core.config import CoreConfig
from core.errors import InvalidInput
from core.models import (
    ArchiveReason,
    AuditEvent,
    ConsentStatus,
    Coordination,
    Informed,
    Institution,
    Match,
    MatchConsent,
    MatchKind,
    MatchMember,
    Municipality,
    MunicipalityAction,
    MunicipalityActionKind,
    Professional,
    Signal,
    Youth,
)
from core.rendering import datum_kort
from core.signal_terms import UNJUSTIFIED

SMALL_CELL = 5  # counts under this identify children
SUPPRESSED = "<5"
WITHHELD = "—"  # a share or median over too few cases
WITHHELD_NOTE = (
    f"{SUPPRESSED}: minder dan 5 (kleine aantallen kunnen een kind herkenbaar maken). "
    f"{WITHHELD}: niet berekend, omdat het om minder dan 5 gevallen gaat of een aantal onder de 5 "
    "zou verraden."
)
_CHUNK = 500  # values per IN (...): well below SQLite's bound-parameter limit

_MONTHS = (
    "januari", "februari", "maart", "april", "mei", "juni",
    "juli", "augustus", "september", "oktober", "november", "december",
)  # fmt: skip
_SHORT_MONTHS = (
    "jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
)  # fmt: skip

# Sections and columns, as people read them (the CSV's and the JSON's names too).
SIGNALS = "Signalen"
MATCHES = "Matches"
COORDINATION = "Procescoördinatie"
STALLS = "Vastgelopen (naar de gemeente)"
REGIE = "Regie van de gemeente"
INFORMING = "Informeren en toestemming"
PLACED, ENDED, WITHDRAWN = "geplaatst", "beëindigd", "ingetrokken"
VALUE = "waarde"

# Escalations to the municipality contact, by the stage where the follow-up stalled.
STALL_STAGES = {
    "coordination-escalated": "procescoördinatie: geen antwoord binnen de termijn",
    "coordination-unassigned": "procescoördinatie: geen instelling (alle kandidaten weigerden)",
    "match-escalated": "match-opvolging: geen contact binnen de termijn",
}
# What the municipality's contact did with them (REGIE, AANWIJZEN, AFGEROND: core.regie).
REGIE_ACTIONS = {
    MunicipalityActionKind.REGIE.value: "regie genomen",
    MunicipalityActionKind.ASSIGNED.value: "instelling aangewezen",
    MunicipalityActionKind.CLOSED.value: "afgerond",
}


# -- the suppression rule ---------------------------------------------------------------------


def shown(count: int) -> str:
    """A count as the report shows it: ``<5`` under 5 (the one rule every cell goes through)."""
    return SUPPRESSED if count < SMALL_CELL else str(count)


def shown_breakdown(counts: dict[str, int]) -> dict[str, str]:
    """Cells of a breakdown whose total is shown: :func:`shown` each, and when exactly one is
    hidden, the smallest visible one too, so the hidden one cannot be worked out."""
    cells = {name: shown(count) for name, count in counts.items()}
    hidden = [name for name, value in cells.items() if value == SUPPRESSED]
    visible = [name for name, value in cells.items() if value != SUPPRESSED]
    if len(hidden) == 1 and visible:
        cells[min(visible, key=lambda name: (counts[name], name))] = SUPPRESSED
    return cells


def shown_share(part: int, whole: int) -> str:
    """``62 %``; withheld over fewer than 5 cases, or when the part or the rest is a count
    under 5 (a share of a shown total gives both away)."""
    if shown(whole) == SUPPRESSED or shown(part) == SUPPRESSED or shown(whole - part) == SUPPRESSED:
        return WITHHELD
    return f"{round(100 * part / whole)} %"


def shown_median(days: Sequence[float]) -> str:
    """``2,5`` days (Dutch decimal comma); withheld over fewer than 5 cases."""
    if shown(len(days)) == SUPPRESSED:
        return WITHHELD
    return f"{statistics.median(days):.1f}".replace(".", ",")


# -- the period -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportPeriod:
    """Calendar days ``first`` to ``last``, both included, in the region's time zone."""

    first: date
    last: date

    @classmethod
    def month_of(cls, day: date) -> ReportPeriod:
        first = day.replace(day=1)
        return cls(first, first + relativedelta(months=1) - timedelta(days=1))

    @classmethod
    def month_before(cls, day: date) -> ReportPeriod:
        """The last full calendar month before ``day``: the default period."""
        return cls.month_of(day.replace(day=1) - timedelta(days=1))

    @property
    def is_month(self) -> bool:
        return self == ReportPeriod.month_of(self.first)

    @property
    def label(self) -> str:
        if self.is_month:
            return f"{_MONTHS[self.first.month - 1]} {self.first.year}"
        return f"{datum_kort(self.first)} t/m {datum_kort(self.last)}"

    @property
    def short_label(self) -> str:
        """``mrt 2026``, for a chart's axis."""
        return f"{_SHORT_MONTHS[self.first.month - 1]} {self.first.year}"

    def bounds(self, config: CoreConfig) -> tuple[datetime, datetime]:
        """``[start, end)`` in aware UTC."""
        return (
            start_of_local_day(self.first, config.tz),
            start_of_local_day(self.last + timedelta(days=1), config.tz),
        )


def report_period(first: date | None, last: date | None, *, today: date) -> ReportPeriod:
    """The period asked for: the last full month by default; ``first`` alone runs to today,
    ``last`` alone starts on the first of its month. A period that ends before it starts is
    refused naming the field."""
    if first is None and last is None:
        return ReportPeriod.month_before(today)
    start = first if first is not None else (last or today).replace(day=1)
    end = last if last is not None else today
    if end < start:
        raise InvalidInput(
            f"de periode eindigt ({datum_kort(end)}) vóór ze begint ({datum_kort(start)})",
            field="--to",
        )
    return ReportPeriod(start, end)


def report_municipality(session: Session, name: str | None) -> str | None:
    """The municipality's name as the covenant spells it (any case), or None for the region.
    One that left the covenant may still be reported on: its past is in the index."""
    if name is None or not name.strip():
        return None
    wanted = name.strip().casefold()
    names = session.exec(select(Municipality.name).order_by(col(Municipality.name))).all()
    for known in names:
        if known.casefold() == wanted:
            return known
    raise InvalidInput(
        f"onbekende gemeente '{name.strip()}' (bekend: {', '.join(names)})", field="--municipality"
    )


# -- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One cell: ``section``, its row and column, and the value as shown (suppressed)."""

    section: str
    row: str
    column: str
    value: str


@dataclass(frozen=True)
class Report:
    municipality: str | None  # None: the whole region
    period: ReportPeriod
    figures: tuple[Figure, ...]
    notes: tuple[str, ...] = (WITHHELD_NOTE,)

    @property
    def scope(self) -> str:
        return f"gemeente {self.municipality}" if self.municipality else "de hele regio"

    def sections(self) -> list[str]:
        return list(dict.fromkeys(f.section for f in self.figures))

    def section(self, name: str) -> tuple[list[str], list[str], dict[tuple[str, str], str]]:
        """Rows, columns and cells of one section, in order."""
        figures = [f for f in self.figures if f.section == name]
        rows = list(dict.fromkeys(f.row for f in figures))
        columns = list(dict.fromkeys(f.column for f in figures))
        return rows, columns, {(f.row, f.column): f.value for f in figures}

    def value(self, section: str, row: str, column: str = VALUE) -> str:
        for figure in self.figures:
            if (figure.section, figure.row, figure.column) == (section, row, column):
                return figure.value
        raise KeyError((section, row, column))

    def to_json(self) -> dict[str, Any]:
        return {
            "municipality": self.municipality,
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "period": self.period.label,
            "figures": [
                {"section": f.section, "row": f.row, "column": f.column, "value": f.value}
                for f in self.figures
            ],
            "notes": list(self.notes),
        }


def report_csv(report: Report) -> str:
    """The figures as CSV (``;``, as Dutch spreadsheets expect), one cell a line, with the
    scope and period on every line so that months can be appended to one sheet."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["gemeente", "van", "tot en met", "onderdeel", "regel", "kolom", "waarde"])
    scope = report.municipality or "hele regio"
    for f in report.figures:
        writer.writerow(
            [
                scope,
                report.period.first.isoformat(),
                report.period.last.isoformat(),
                f.section,
                f.row,
                f.column,
                f.value,
            ]
        )
    return out.getvalue()


def follow_up_report(
    session: Session, config: CoreConfig, *, municipality: str | None, period: ReportPeriod
) -> Report:
    """The figures for ``municipality`` (None: the region) over ``period``."""
    facts = _Facts(session, config, municipality)
    start, end = period.bounds(config)
    figures = [
        *_signal_figures(facts, start, end),
        *_match_figures(facts, start, end),
        *_coordination_figures(facts, start, end),
        *_stall_figures(facts, start, end),
        *_regie_figures(facts, start, end),
        *_informing_figures(facts, start, end),
    ]
    return Report(municipality=municipality, period=period, figures=tuple(figures))


@dataclass(frozen=True)
class TrendPoint:
    period: ReportPeriod
    signals_placed: str  # as shown: a count, or <5
    matches: str


def monthly_trend(
    session: Session,
    config: CoreConfig,
    *,
    municipality: str | None,
    last_month: ReportPeriod,
    months: int = 12,
) -> list[TrendPoint]:
    """Signals placed and matches made per month, the ``months`` months up to ``last_month``
    (read once for the whole span, counted per local calendar month)."""
    facts = _Facts(session, config, municipality)
    periods = [
        ReportPeriod.month_of(last_month.first - relativedelta(months=back))
        for back in range(months - 1, -1, -1)
    ]
    start, end = periods[0].bounds(config)[0], periods[-1].bounds(config)[1]

    def month(moment: datetime) -> date:
        return local_date(moment, config.tz).replace(day=1)

    placed = Counter(
        month(event.occurred_at) for event, _ in facts.signal_events(("signal-placed",), start, end)
    )
    matches = Counter(month(match.created_at) for match in facts.matches(start, end))
    return [TrendPoint(p, shown(placed[p.first]), shown(matches[p.first])) for p in periods]


# -- reading the index ------------------------------------------------------------------------


@dataclass(frozen=True)
class _SignalFacts:
    code: str
    institution_kind: str


@dataclass
class _Facts:
    """Read-only look-ups shared by the figures of one report; ``municipality`` filters."""

    session: Session
    config: CoreConfig
    municipality: str | None
    _towns: dict[int, str | None] = field(default_factory=dict)
    _kinds: dict[str, str] = field(default_factory=dict)
    _professional_kinds: dict[str, str] = field(default_factory=dict)

    def events(self, actions: Iterable[str], start: datetime, end: datetime) -> list[AuditEvent]:
        return list(
            self.session.exec(
                select(AuditEvent)
                .where(
                    col(AuditEvent.action).in_(list(actions)),
                    col(AuditEvent.occurred_at) >= start,
                    col(AuditEvent.occurred_at) < end,
                )
                .order_by(col(AuditEvent.id))
            ).all()
        )

    def events_about(
        self, actions: Iterable[str], key: str, values: Iterable[str], before: datetime
    ) -> list[AuditEvent]:
        """Events whose ``details[key]`` is one of ``values`` (a signal or coordination
        number), whenever they happened before ``before``."""
        found: list[AuditEvent] = []
        wanted = sorted(set(values))
        for chunk in _chunks(wanted):
            found += self.session.exec(
                select(AuditEvent).where(
                    col(AuditEvent.action).in_(list(actions)),
                    col(AuditEvent.details)[key].as_string().in_(chunk),
                    col(AuditEvent.occurred_at) < before,
                )
            ).all()
        return sorted(found, key=lambda event: event.id or 0)

    # -- where things belong

    def town_of_youths(self, youth_ids: Iterable[int]) -> dict[int, str | None]:
        """Each youth's municipality now; None for a youth purged since."""
        wanted = list(youth_ids)
        missing = sorted({y for y in wanted if y not in self._towns})
        for chunk in _chunks(missing):
            self._towns.update(dict.fromkeys(chunk))
            rows = self.session.exec(
                select(Youth.id, Youth.municipality).where(col(Youth.id).in_(chunk))
            ).all()
            self._towns.update({int(y or 0): town for y, town in rows})
        return {y: self._towns.get(y) for y in wanted}

    def counts_here(self, youth_ids: Iterable[int]) -> bool:
        """Whether something about these youths counts in this report."""
        if self.municipality is None:
            return True
        towns = self.town_of_youths(list(youth_ids))
        return self.municipality in towns.values()

    def institution_kind(self, institution_id: str | None) -> str:
        if institution_id is None:
            return "onbekend"
        if institution_id not in self._kinds:
            institution = self.session.get(Institution, institution_id)
            self._kinds[institution_id] = institution.kind if institution else "onbekend"
        return self._kinds[institution_id]

    def kind_of_actor(self, actor: str) -> str:
        """The institution kind of the professional (or institution) in an event's actor."""
        kind, _, identifier = actor.partition(":")
        if kind == "institution":
            return self.institution_kind(identifier)
        if kind != "professional":
            return "onbekend"
        if identifier not in self._professional_kinds:
            professional = self.session.exec(
                select(Professional).where(Professional.email == identifier)
            ).first()
            self._professional_kinds[identifier] = self.institution_kind(
                professional.institution_id if professional else None
            )
        return self._professional_kinds[identifier]

    # -- signals

    def signal_events(
        self, actions: Sequence[str], start: datetime, end: datetime
    ) -> Iterator[tuple[AuditEvent, _SignalFacts]]:
        """Signal events of the period that count here, each with its signal's code and
        institution kind (from its ``signal-placed`` event)."""
        events = [e for e in self.events(actions, start, end) if _youth_of(e) is not None]
        self.town_of_youths(_youth_of(e) or 0 for e in events)
        events = [e for e in events if self.counts_here([_youth_of(e) or 0])]
        placed = {str(e.details.get("signal")): e for e in events if e.action == "signal-placed"}
        later = {str(e.details.get("signal")) for e in events} - placed.keys()
        for event in self.events_about(("signal-placed",), "signal", later, end):
            placed[str(event.details.get("signal"))] = event
        for event in events:
            origin = placed.get(str(event.details.get("signal")))
            if origin is None:
                facts = _SignalFacts("onbekend", "onbekend")
            else:
                facts = _SignalFacts(
                    str(origin.details.get("code") or "onbekend"), self.kind_of_actor(origin.actor)
                )
            yield event, facts

    def signals_placed(self, start: datetime, end: datetime) -> list[Signal]:
        """The signals placed in the period that the index still holds."""
        signals = self.session.exec(
            select(Signal).where(col(Signal.placed_at) >= start, col(Signal.placed_at) < end)
        ).all()
        self.town_of_youths(s.youth_id for s in signals)
        return [s for s in signals if self.counts_here([s.youth_id])]

    # -- matches

    def matches(self, start: datetime, end: datetime) -> list[Match]:
        matches = list(
            self.session.exec(
                select(Match).where(col(Match.created_at) >= start, col(Match.created_at) < end)
            ).all()
        )
        if self.municipality is None:
            return matches
        youths = self.youths_of_matches(matches)
        return [m for m in matches if self.counts_here(youths.get(m.id or 0, []))]

    def youths_of_matches(self, matches: Sequence[Match]) -> dict[int, list[int]]:
        """The youths of each match's signals (a family match has several)."""
        youths: dict[int, list[int]] = {m.id or 0: [] for m in matches}
        for chunk in _chunks(list(youths)):
            for match_id, youth_id in self.session.exec(
                select(MatchMember.match_id, Signal.youth_id)
                .join(Signal, col(Signal.id) == MatchMember.signal_id)
                .where(col(MatchMember.match_id).in_(chunk))
            ).all():
                youths[match_id].append(youth_id)
        for match in matches:  # its signals deleted since: the youth it was made for
            if not youths[match.id or 0] and match.youth_id:
                youths[match.id or 0] = [match.youth_id]
        return youths

    def members_at_end(self, matches: Sequence[Match]) -> dict[int, list[MatchMember]]:
        """Per match, the partners the follow-up waits for: those still in it (when it
        ended, for an ended match)."""
        by_id = {m.id or 0: m for m in matches}
        members: dict[int, list[MatchMember]] = {match_id: [] for match_id in by_id}
        for chunk in _chunks(list(by_id)):
            for member in self.session.exec(
                select(MatchMember).where(col(MatchMember.match_id).in_(chunk))
            ).all():
                ended_at = by_id[member.match_id].ended_at
                if member.left_at is None or (ended_at is not None and member.left_at >= ended_at):
                    members[member.match_id].append(member)
        return members


def _youth_of(event: AuditEvent) -> int | None:
    kind, _, number = event.subject.partition(":")
    return int(number) if kind == "youth" and number.isdigit() else None


def _chunks(values: Sequence[Any]) -> Iterator[list[Any]]:
    for offset in range(0, len(values), _CHUNK):
        yield list(values[offset : offset + _CHUNK])


def _days(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 86400


# -- the figures ------------------------------------------------------------------------------


def _signal_figures(facts: _Facts, start: datetime, end: datetime) -> list[Figure]:
    """Per column (placed, ended, withdrawn): the total, then per code and per kind."""
    columns = {PLACED: Counter[tuple[str, str]](), ENDED: Counter(), WITHDRAWN: Counter()}
    actions = ("signal-placed", "signal-archived", "signal-deleted")
    for event, signal in facts.signal_events(actions, start, end):
        column = _signal_column(event)
        if column is not None:
            columns[column][(signal.code, signal.institution_kind)] += 1
    codes = [c.code for c in facts.config.covenant.signal_codes]
    kinds = sorted({kind for counter in columns.values() for _, kind in counter})
    figures: list[Figure] = []
    for column, counter in columns.items():
        figures.append(Figure(SIGNALS, "totaal", column, shown(sum(counter.values()))))
        by_code = {f"code {code}": 0 for code in codes}
        by_kind = {f"instelling {kind}": 0 for kind in kinds}
        for (code, kind), count in counter.items():
            by_code[f"code {code}"] = by_code.get(f"code {code}", 0) + count
            by_kind[f"instelling {kind}"] += count
        for breakdown in (by_code, by_kind):
            figures += [
                Figure(SIGNALS, row, column, value)
                for row, value in shown_breakdown(breakdown).items()
            ]
    return _by_row(figures)


# How a signal's life ended (its event's ``reason``), as the report counts it. A signal removed
# on a rights request (AVG art. 16, 17, 21) is neither: its correction is no follow-up figure.
_END_COLUMNS = {
    ArchiveReason.EXPIRED.value: ENDED,  # its end date passed
    ArchiveReason.RISK_GONE.value: WITHDRAWN,  # withdrawn: the risk is gone (archived)
    UNJUSTIFIED: WITHDRAWN,  # withdrawn as unjustified (deleted)
}


def _signal_column(event: AuditEvent) -> str | None:
    if event.action == "signal-placed":
        return PLACED
    return _END_COLUMNS.get(str(event.details.get("reason")))


def _by_row(figures: list[Figure]) -> list[Figure]:
    """Cells ordered row by row, as a table reads (columns keep their order)."""
    rows = list(dict.fromkeys(f.row for f in figures))
    return sorted(figures, key=lambda f: rows.index(f.row))


def _match_figures(facts: _Facts, start: datetime, end: datetime) -> list[Figure]:
    matches = facts.matches(start, end)
    by_kind = {
        "matches (één jeugdige)": sum(1 for m in matches if m.kind == MatchKind.CLIENT),
        "gezinsmatches": sum(1 for m in matches if m.kind == MatchKind.FAMILY),
    }
    followed_up: list[float] = []
    partners = facts.members_at_end(matches)
    for match in matches:
        members = partners[match.id or 0]
        confirmed = [m.contact_confirmed_at for m in members if m.contact_confirmed_at]
        if members and len(confirmed) == len(members):
            followed_up.append(_days(match.created_at, max(confirmed)))
    figures = [Figure(MATCHES, "totaal", VALUE, shown(len(matches)))]
    figures += [Figure(MATCHES, row, VALUE, v) for row, v in shown_breakdown(by_kind).items()]
    figures += [
        Figure(
            MATCHES,
            "contact bevestigd door alle partners",
            VALUE,
            shown_share(len(followed_up), len(matches)),
        ),
        Figure(MATCHES, "mediaan dagen tot contact", VALUE, shown_median(followed_up)),
    ]
    return figures


_COORDINATION_ACTIONS = (
    "coordination-assigned",
    "coordination-accepted",
    "coordination-declined",
    "coordination-escalated",
    "coordination-unassigned",
)


def _coordination_figures(facts: _Facts, start: datetime, end: datetime) -> list[Figure]:
    events = [
        e
        for e in facts.events(_COORDINATION_ACTIONS, start, end)
        if facts.counts_here([_youth_of(e) or 0])
    ]
    counts = Counter(e.action for e in events)
    accepted = [e for e in events if e.action == "coordination-accepted"]
    history = facts.events_about(
        _COORDINATION_ACTIONS,
        "coordination",
        (str(e.details.get("coordination")) for e in accepted),
        end,
    )
    in_time = 0
    waited: list[float] = []
    for acceptance in accepted:
        round_started = _round_of(acceptance, history)
        if round_started is None:
            continue
        assignment, escalated = round_started
        waited.append(_days(assignment.occurred_at, acceptance.occurred_at))
        if not escalated and _before_deadline(facts, assignment, acceptance):
            in_time += 1
    escalations = counts["coordination-escalated"] + counts["coordination-unassigned"]
    return [
        Figure(COORDINATION, "toegewezen", VALUE, shown(counts["coordination-assigned"])),
        Figure(COORDINATION, "geaccepteerd", VALUE, shown(len(accepted))),
        Figure(
            COORDINATION,
            "geaccepteerd binnen de termijn",
            VALUE,
            shown_share(in_time, len(accepted)),
        ),
        Figure(COORDINATION, "geweigerd", VALUE, shown(counts["coordination-declined"])),
        Figure(COORDINATION, "geëscaleerd naar de gemeente", VALUE, shown(escalations)),
        Figure(COORDINATION, "mediaan dagen tot acceptatie", VALUE, shown_median(waited)),
    ]


def _round_of(acceptance: AuditEvent, history: list[AuditEvent]) -> tuple[AuditEvent, bool] | None:
    """The assignment ``acceptance`` answered, and whether that round was escalated first."""
    number = acceptance.details.get("coordination")
    assignment: AuditEvent | None = None
    escalated = False
    for event in history:
        if event.details.get("coordination") != number or (event.id or 0) >= (acceptance.id or 0):
            continue
        if event.action == "coordination-assigned":
            assignment, escalated = event, False
        elif event.action == "coordination-escalated":
            escalated = True
    return (assignment, escalated) if assignment is not None else None


def _before_deadline(facts: _Facts, assignment: AuditEvent, acceptance: AuditEvent) -> bool:
    """Within the response time (working days of the round's code) of the assignment."""
    number = str(acceptance.details.get("coordination") or "")
    digits = number.removeprefix("C-")
    coordination = facts.session.get(Coordination, int(digits)) if digits.isdigit() else None
    if coordination is None:
        return True  # purged since; the round was not escalated, which is what counts then
    due = facts.config.calendar.deadline_after(
        assignment.occurred_at, coordination.response_working_days
    )
    return as_utc(acceptance.occurred_at) <= due


def _stall_figures(facts: _Facts, start: datetime, end: datetime) -> list[Figure]:
    stalls = Counter[str]()
    for event in facts.events(STALL_STAGES, start, end):
        if facts.counts_here(_youths_of_event(facts, event)):
            stalls[event.action] += 1
    counts = {STALL_STAGES[action]: stalls[action] for action in STALL_STAGES}
    return [Figure(STALLS, "totaal", VALUE, shown(sum(counts.values())))] + [
        Figure(STALLS, row, VALUE, value) for row, value in shown_breakdown(counts).items()
    ]


def _youths_of_event(facts: _Facts, event: AuditEvent) -> list[int]:
    """The youths an event is about: its subject's youth, or a match's youths."""
    youth_id = _youth_of(event)
    if youth_id is not None:
        return [youth_id]
    match = _match_of(facts.session, event)
    return facts.youths_of_matches([match])[match.id or 0] if match is not None else []


def _match_of(session: Session, event: AuditEvent) -> Match | None:
    kind, _, number = event.subject.partition(":")
    return session.get(Match, int(number)) if kind == "match" and number.isdigit() else None


def _regie_figures(facts: _Facts, start: datetime, end: datetime) -> list[Figure]:
    """The municipality's own actions in the period (all municipalities', for the region)."""
    query = select(MunicipalityAction.action).where(
        col(MunicipalityAction.at) >= start, col(MunicipalityAction.at) < end
    )
    if facts.municipality is not None:
        query = query.where(MunicipalityAction.municipality == facts.municipality)
    done = Counter(facts.session.exec(query).all())
    counts = {label: done[action] for action, label in REGIE_ACTIONS.items()}
    return [Figure(REGIE, "totaal", VALUE, shown(sum(counts.values())))] + [
        Figure(REGIE, row, VALUE, value) for row, value in shown_breakdown(counts).items()
    ]


def _informing_figures(facts: _Facts, start: datetime, end: datetime) -> list[Figure]:
    """Informing (Jeugdwet 7.1.5) of the signals placed in the period, and consent after a
    match (seed 003) for the matches made in it: per matched institution, its current status."""
    signals = facts.signals_placed(start, end)
    informed = sum(1 for s in signals if s.informed == Informed.YES)
    match_ids = [m.id for m in facts.matches(start, end)]
    consents: list[str] = []
    for chunk in _chunks(match_ids):
        consents += facts.session.exec(
            select(MatchConsent.status).where(col(MatchConsent.match_id).in_(chunk))
        ).all()
    given = sum(1 for status in consents if status == ConsentStatus.GIVEN)
    return [
        Figure(
            INFORMING,
            "signalen waarbij jongere/ouders zijn geïnformeerd",
            VALUE,
            shown_share(informed, len(signals)),
        ),
        Figure(INFORMING, "toestemming na een match vastgelegd", VALUE, shown(len(consents))),
        Figure(
            INFORMING,
            "waarvan toestemming gegeven",
            VALUE,
            shown_share(given, len(consents)),
        ),
    ]


def view_report(
    session: Session,
    config: CoreConfig,
    *,
    municipality: str | None,
    first: date | None,
    last: date | None,
    actor: audit.Actor,
    now: datetime,
) -> Report:
    """``verwijsindex report``: the figures asked for, and who asked in the logboek (aggregates
    only, but who looks at what is the logboek's to know)."""
    period = report_period(first, last, today=local_date(now, config.tz))
    name = report_municipality(session, municipality)
    report = follow_up_report(session, config, municipality=name, period=period)
    audit.record(
        session,
        actor,
        "report-viewed",
        f"municipality:{name}" if name else "region",
        details={"from": period.first.isoformat(), "to": period.last.isoformat()},
        at=now,
    )
    return report
