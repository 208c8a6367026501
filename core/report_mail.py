"""The monthly report mail (issue 11.9): on the first working day of a month, each
municipality's contact receives last month's follow-up figures (core.report) for its own youths —
a table in the text and HTML, bar charts per signal code and per institution kind and a trend
over the last 12 months as inline PNG images, and the same figures as a CSV attachment.

Idempotent through the outbox: the occasion's key is the municipality and the month, so a second
sweep, or a second instance sweeping at the same moment, adds nothing (the outbox's unique
idempotency key settles the race). A service that was down on the first working day sends the
report at its first sweep after it, later that month. Only aggregates, already suppressed
(core.report.shown): the mail names no youth and no count under 5.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from core.clock import local_date
from core.config import CoreConfig
from core.models import Municipality
from core.notifications.dispatch import already_notified, notify
from core.notifications.recipients import municipality_recipient
from core.outbox import MailPart, mail_parts_context
from core.report import (
    PLACED,
    SIGNALS,
    Report,
    ReportPeriod,
    TrendPoint,
    follow_up_report,
    monthly_trend,
    report_csv,
)
from core.report_charts import bar_chart, trend_chart

KIND = "maandrapport"
TREND_MONTHS = 12


def first_working_day(month: date, config: CoreConfig) -> date:
    """The first working day of ``month``'s month (Algemene termijnenwet, the covenant's
    closing days: core.working_days)."""
    return config.calendar.add_working_days(month.replace(day=1) - timedelta(days=1), 1)


def send_monthly_reports(session: Session, config: CoreConfig, now: datetime) -> int:
    """Scheduler job: last month's report to every active municipality's contact, once, from
    the first working day of this month on. Returns the notifications added."""
    today = local_date(now, config.tz)
    if today < first_working_day(today, config):
        return 0
    period = ReportPeriod.month_before(today)
    added = 0
    municipalities = session.exec(
        select(Municipality).where(col(Municipality.active)).order_by(col(Municipality.name))
    ).all()
    for municipality in municipalities:
        recipient = municipality_recipient(municipality)
        key = f"{municipality.name}:{period.first:%Y-%m}"
        if already_notified(session, KIND, key, recipient):
            continue  # figures and charts are made only for a report still to send
        report = follow_up_report(session, config, municipality=municipality.name, period=period)
        trend = monthly_trend(
            session, config, municipality=municipality.name, last_month=period, months=TREND_MONTHS
        )
        added += notify(
            session,
            config,
            kind=KIND,
            recipients=[recipient],
            reference=report_reference(period),
            context=report_mail_context(report, trend),
            key=key,
            now=now,
        )
    return added


def report_reference(period: ReportPeriod) -> str:
    """``MR-2026-03``: what the mail is about (``X-Verwijsindex-Ref``)."""
    return f"MR-{period.first:%Y-%m}"


def report_mail_context(report: Report, trend: list[TrendPoint]) -> dict[str, Any]:
    """What the templates show, and the files the mail carries (charts inline, CSV attached)."""
    slug = _slug(report.municipality or "regio")
    month = f"{report.period.first:%Y-%m}"
    charts = _charts(report, trend, slug, month)
    csv_name = f"verwijsindex-{slug}-{month}.csv"
    attachment = MailPart(csv_name, "text/csv", report_csv(report).encode("utf-8"))
    return {
        "period": report.period.label,
        "municipality": report.municipality,
        "scope": report.scope,
        "sections": _sections(report),
        "notes": list(report.notes),
        "charts": [
            {"cid": part.content_id, "title": title, "alt": alt} for part, title, alt in charts
        ],
        "trend": [
            {"month": p.period.label, "signals": p.signals_placed, "matches": p.matches}
            for p in trend
        ],
        "attachment": csv_name,
        **mail_parts_context([*(part for part, _, _ in charts), attachment]),
    }


def _sections(report: Report) -> list[dict[str, Any]]:
    sections = []
    for name in report.sections():
        rows, columns, cells = report.section(name)
        sections.append(
            {
                "title": name,
                "columns": columns,
                "rows": [
                    {"label": row, "cells": [cells.get((row, c), "") for c in columns]}
                    for row in rows
                ],
            }
        )
    return sections


def _charts(
    report: Report, trend: list[TrendPoint], slug: str, month: str
) -> list[tuple[MailPart, str, str]]:
    rows, _, cells = report.section(SIGNALS)
    charts = []
    for prefix, title in (
        ("code ", "Signalen geplaatst per signaalcode"),
        ("instelling ", "Signalen geplaatst per soort instelling"),
    ):
        labels = [row for row in rows if row.startswith(prefix)]
        values = [cells[(row, PLACED)] for row in labels]
        shown_labels = [label.removeprefix(prefix) for label in labels]
        alt = ", ".join(
            f"{label}: {value}" for label, value in zip(shown_labels, values, strict=True)
        )
        charts.append((bar_chart(title, shown_labels, values), title, alt or "geen signalen"))
    trend_title = f"Verloop over {len(trend)} maanden"
    trend_alt = "; ".join(f"{p.period.label}: {p.signals_placed} / {p.matches}" for p in trend)
    charts.append((trend_chart(trend_title, trend), trend_title, trend_alt))
    return [
        (
            MailPart(
                f"grafiek-{number}.png",
                "image/png",
                png,
                content_id=f"grafiek-{number}.{month}.{slug}@maandrapport.verwijsindex",
            ),
            title,
            alt,
        )
        for number, (png, title, alt) in enumerate(charts, start=1)
    ]


def _slug(name: str) -> str:
    """``midden-groningen``: a municipality's name as a file name and Content-ID part."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-") or "gemeente"
