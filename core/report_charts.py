"""The monthly report's charts, drawn on the server as PNG (matplotlib's Agg: no display, no
GUI toolkit, safe beside other threads because every chart is a ``Figure`` of its own rather
than pyplot's shared state).

A chart shows what the table shows and nothing more: it is drawn from the suppressed values
(core.report.shown), so a cell under 5 is no bar and no point, only the label ``<5``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from core.report import SUPPRESSED, TrendPoint

WIDTH_INCHES, HEIGHT_INCHES, DPI = 6.4, 3.2, 100  # 640 x 320 pixels: fits a 680 px mail
_BAR = "#2b6cb0"
_SECOND = "#c05621"
_SMALL = "#718096"


def bar_chart(title: str, labels: Sequence[str], values: Sequence[str]) -> bytes:
    """Horizontal bars, one per label; ``values`` as shown (a count or ``<5``)."""
    figure, axes = _figure()
    axes.set_title(title, loc="left", fontsize=11)
    numbers = [_number(value) for value in values]
    positions = list(range(len(labels)))
    axes.barh(positions, [n or 0 for n in numbers], color=_BAR)
    axes.set_yticks(positions, labels=list(labels), fontsize=9)
    axes.invert_yaxis()  # first label on top, as in the table
    top = max([n or 0 for n in numbers] + [5])
    for position, number, value in zip(positions, numbers, values, strict=True):
        colour = _SMALL if number is None else "#1a1a1a"
        axes.text(
            (number or 0) + top * 0.01, position, value, va="center", fontsize=9, color=colour
        )
    axes.set_xlim(0, top * 1.15)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def trend_chart(title: str, points: Sequence[TrendPoint]) -> bytes:
    """Signals placed and matches per month; a month under 5 is a gap marked ``<5``."""
    figure, axes = _figure()
    axes.set_title(title, loc="left", fontsize=11)
    positions = list(range(len(points)))
    for offset, (label, values, colour) in enumerate(
        (
            ("signalen geplaatst", [p.signals_placed for p in points], _BAR),
            ("matches", [p.matches for p in points], _SECOND),
        )
    ):
        numbers = [_number(value) for value in values]
        axes.plot(
            positions,
            [float("nan") if n is None else n for n in numbers],
            marker="o",
            color=colour,
            label=label,
        )
        for position, number in zip(positions, numbers, strict=True):
            if number is None:  # one line's label above the other's
                axes.annotate(
                    SUPPRESSED,
                    (position, 0),
                    xytext=(0, 2 + 9 * offset),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    color=colour,
                )
    axes.set_xticks(positions, labels=[p.period.short_label for p in points], fontsize=8)
    axes.tick_params(axis="x", labelrotation=45)
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(fontsize=8, frameon=False, loc="upper left")
    axes.spines[["top", "right"]].set_visible(False)
    return _png(figure)


def _figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _number(value: str) -> int | None:
    return None if value == SUPPRESSED else int(value)


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    # No "Software" or date chunk: the same figures give the same bytes.
    figure.tight_layout()
    figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()
