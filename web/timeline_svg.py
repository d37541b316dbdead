"""A case's timeline (engine.workflow.timeline) drawn on the server as SVG, and the same marks as rows for its text
alternative.

One horizontal axis with a tick at the start of each month in the organisation's time zone, a line for today, each
mark a shape on the axis with its label above it in the first row where it overlaps no other label (marks that find
no row keep their label in the shape's <title> and in the list beside the picture). Overdue is red, a triangle and
the word "Overdue"; a moved date is an arrow from the date it was to the date it is now. Every piece of text is
escaped; the picture scales to its container (viewBox, width 100%).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from engine.workflow.timeline import Mark, Timeline, instant, local_day

WIDTH = 800
MARGIN = 18
ROW = 18  #: the height of one row of labels
MAX_ROWS = 6  #: rows of labels above the axis; a label that fits in none stays in the list
CHAR = 6.1  #: the width of one character of a label, roughly, at the labels' size
MAX_LABEL = 34  #: characters of a label drawn in the picture (the list has it whole)
TOP = 24  #: room above the labels for today's caption
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
KIND_WORDS = {"milestone": "date", "due": "due", "done": "done", "timer": "timer", "moved-from": "moved from"}
STATE_WORDS = {"past": "past", "today": "today", "future": "to come", "overdue": "overdue"}


@dataclass(frozen=True)
class Row:
    """One mark as the text alternative lists it."""

    day: str
    label: str
    kind: str
    state: str
    overdue: bool
    clause: str | None
    note: str
    moved_to: str | None
    moved: bool


def rows(timeline: Timeline) -> list[Row]:
    """The timeline's marks, in order, as the list beside the picture shows them."""
    tz = timeline.timezone
    return [Row(local_day(m.when, tz).isoformat(), m.label, KIND_WORDS.get(m.kind, m.kind),
                STATE_WORDS.get(m.state or "", m.state or ""), m.state == "overdue", m.clause, m.note,
                local_day(m.moved_to, tz).isoformat() if m.moved_to is not None else None, m.moved)
            for m in timeline.marks]


@dataclass
class _Scale:
    """Where a moment falls on the axis."""

    start: datetime
    end: datetime

    def x(self, moment: datetime) -> float:
        span = (self.end - self.start).total_seconds()
        return MARGIN + (moment - self.start).total_seconds() / span * (WIDTH - 2 * MARGIN)


def _scale(timeline: Timeline) -> _Scale:
    """From a little before the first mark (or today) to a little after the last."""
    tz = timeline.timezone
    moments = [instant(m.when, tz) for m in timeline.marks]
    moments += [instant(m.moved_to, tz) for m in timeline.marks if m.moved_to is not None]
    moments.append(timeline.now)
    first, last = min(moments), max(moments)
    if last - first < timedelta(days=30):
        middle = first + (last - first) / 2
        first, last = middle - timedelta(days=15), middle + timedelta(days=15)
    pad = (last - first) * 0.04
    return _Scale(first - pad, last + pad)


def _ticks(scale: _Scale, timezone: str) -> Iterator[tuple[float, str]]:
    """The start of each month on the axis (every few months on a long one), with its caption."""
    zone = ZoneInfo(timezone)
    local = scale.start.astimezone(zone)
    year, month = local.year, local.month
    months = (scale.end.year - scale.start.year) * 12 + scale.end.month - scale.start.month + 1
    step = max(1, math.ceil(months / 12))
    first = True
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        at = datetime(year, month, 1, tzinfo=zone)
        if at > scale.end:
            return
        if (month - 1) % step:
            continue
        yield scale.x(at), (f"{MONTHS[month - 1]} {year}" if first or month == 1 else MONTHS[month - 1])
        first = False


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL else label[:MAX_LABEL - 1].rstrip() + "…"


def _caption(mark: Mark) -> str:
    """The words drawn beside a mark: overdue and moved say so in words, not by colour alone."""
    if mark.state == "overdue":
        return "Overdue: " + _short(mark.label)
    if mark.moved:
        return _short(mark.label) + " (moved)"
    return _short(mark.label)


#: Which labels get a row first: what is overdue, then what is still to happen, moved dates, dates, what was done.
PRIORITY = {"due": 1, "timer": 1, "moved-from": 2, "milestone": 3, "done": 4}


def _place(marks: list[Mark], xs: list[float], captions: list[str]) -> list[tuple[int | None, str]]:
    """Each label's row (None: no room) and its anchor, so that no two labels of a row overlap; the most pressing
    marks are placed first."""
    rows: list[list[tuple[float, float]]] = []  # per row, the spans its labels take
    result: list[tuple[int | None, str]] = [(None, "start")] * len(xs)
    order = sorted(range(len(xs)), key=lambda i: (0 if marks[i].state == "overdue" else
                                                  PRIORITY.get(marks[i].kind, 5), xs[i]))
    for i in order:
        width = len(captions[i]) * CHAR * (1.12 if marks[i].state == "overdue" else 1) + 10  # overdue is bold
        left, anchor = (xs[i] - width, "end") if xs[i] + width > WIDTH - 4 else (xs[i] - 4, "start")
        fits = [r for r, spans in enumerate(rows) if all(left + width <= a or b <= left for a, b in spans)]
        if not fits and len(rows) < MAX_ROWS:
            rows.append([])
            fits = [len(rows) - 1]
        if fits:
            rows[fits[0]].append((left, left + width))
            result[i] = (fits[0], anchor)
        else:
            result[i] = (None, anchor)
    return result


def _shape(mark: Mark, x: float, y: float) -> str:
    """The mark's shape: a diamond (a date), a square (done), a circle (due), a triangle (overdue), a clock (timer),
    a dashed circle (the date something moved from)."""
    if mark.state == "overdue":
        return (f'<polygon class="tl-overdue" points="{x:.1f},{y - 8:.1f} {x + 7:.1f},{y + 5:.1f} '
                f'{x - 7:.1f},{y + 5:.1f}"/><text class="tl-bang" x="{x:.1f}" y="{y + 3.5:.1f}">!</text>')
    if mark.kind == "done":
        return f'<rect class="tl-done" x="{x - 5:.1f}" y="{y - 5:.1f}" width="10" height="10"/>'
    if mark.kind == "due":
        return f'<circle class="tl-due" cx="{x:.1f}" cy="{y:.1f}" r="5.5"/>'
    if mark.kind == "timer":
        return (f'<circle class="tl-timer" cx="{x:.1f}" cy="{y:.1f}" r="6"/>'
                f'<path class="tl-hand" d="M{x:.1f},{y:.1f} V{y - 4:.1f} M{x:.1f},{y:.1f} H{x + 3:.1f}"/>')
    if mark.kind == "moved-from":
        return f'<circle class="tl-moved-from" cx="{x:.1f}" cy="{y:.1f}" r="5.5"/>'
    ring = f'<circle class="tl-moved-ring" cx="{x:.1f}" cy="{y:.1f}" r="9"/>' if mark.moved else ""
    return ring + (f'<polygon class="tl-milestone" points="{x:.1f},{y - 6:.1f} {x + 6:.1f},{y:.1f} '
                   f'{x:.1f},{y + 6:.1f} {x - 6:.1f},{y:.1f}"/>')


def _describe(timeline: Timeline) -> str:
    """The picture in a few sentences (its <desc>): the span, today, what is overdue, what moved."""
    tz = timeline.timezone
    if not timeline.marks:
        return f"No dates yet. Today is {timeline.today.isoformat()}."
    days = [local_day(m.when, tz) for m in timeline.marks]
    parts = [f"{len(timeline.marks)} dates from {min(days).isoformat()} to {max(days).isoformat()}; "
             f"today is {timeline.today.isoformat()}."]
    overdue = [f"{m.label} (due {local_day(m.when, tz).isoformat()})" for m in timeline.overdue]
    parts.append(f"Overdue: {'; '.join(overdue)}." if overdue else "Nothing is overdue.")
    parts += [f"{m.label} moved from {local_day(m.when, tz).isoformat()} to {local_day(m.moved_to, tz).isoformat()}."
              for m in timeline.marks if m.kind == "moved-from" and m.moved_to is not None]
    return " ".join(parts)


def _legend(y: float) -> Iterator[str]:
    """What each shape means, in words."""
    samples = [(Mark("", date.min, "milestone"), "Date"), (Mark("", date.min, "done"), "Done"),
               (Mark("", date.min, "due"), "Due"), (Mark("", date.min, "due", state="overdue"), "Overdue"),
               (Mark("", date.min, "timer"), "Timer"), (Mark("", date.min, "moved-from"), "Moved from"),
               (Mark("", date.min, "milestone", moved=True), "Moved to")]
    x = MARGIN + 8.0
    for mark, word in samples:
        yield _shape(mark, x, y)
        yield f'<text class="tl-legend" x="{x + 12:.1f}" y="{y + 4:.1f}">{escape(word)}</text>'
        x += 30 + len(word) * 6.8
    yield (f'<line class="tl-today" x1="{x:.1f}" y1="{y - 7:.1f}" x2="{x:.1f}" y2="{y + 7:.1f}"/>'
           f'<text class="tl-legend" x="{x + 6:.1f}" y="{y + 4:.1f}">Today</text>')


def _arrows(timeline: Timeline, scale: _Scale, axis: float, key: str) -> Iterator[str]:
    """A moved date: a curved arrow below the axis from the date it was to the date it is now."""
    for mark in timeline.marks:
        if mark.kind != "moved-from" or mark.moved_to is None:
            continue
        x1 = scale.x(instant(mark.when, timeline.timezone))
        x2 = scale.x(instant(mark.moved_to, timeline.timezone))
        dip = axis + 24
        yield (f'<path class="tl-arrow" marker-end="url(#{key}-arrowhead)" d="M{x1:.1f},{axis + 7:.1f} '
               f'C{x1:.1f},{dip:.1f} {x2:.1f},{dip:.1f} {x2:.1f},{axis + 9:.1f}">'
               f'<title>{escape(mark.label)}: moved to {escape(local_day(mark.moved_to, timeline.timezone))}'
               f'</title></path>')


def _marks(timeline: Timeline, scale: _Scale, axis: float) -> Iterator[str]:
    """Each mark's shape on the axis, with its whole label and date as its <title>, and its caption in its row."""
    tz = timeline.timezone
    xs = [scale.x(instant(m.when, tz)) for m in timeline.marks]
    captions = [_caption(m) for m in timeline.marks]
    placed = _place(timeline.marks, xs, captions)
    for mark, x, caption, (row, anchor) in zip(timeline.marks, xs, captions, placed, strict=True):
        day = local_day(mark.when, tz).isoformat()
        state = mark.state or ""
        words = f"{mark.label}: {KIND_WORDS.get(mark.kind, mark.kind)} {day} ({STATE_WORDS.get(state, state)})"
        yield f'<g class="tl-mark tl-kind-{escape(mark.kind)} tl-state-{escape(state)}"><title>{escape(words)}</title>'
        yield _shape(mark, x, axis)
        if row is not None:
            y = axis - 20 - row * ROW
            yield f'<line class="tl-leader" x1="{x:.1f}" y1="{y + 3:.1f}" x2="{x:.1f}" y2="{axis - 8:.1f}"/>'
            yield (f'<text class="tl-label" x="{x + (4 if anchor == "start" else -4):.1f}" y="{y:.1f}" '
                   f'text-anchor="{anchor}">{escape(caption)}</text>')
        yield "</g>"


def render(timeline: Timeline, ident: str = "timeline") -> Markup:
    """The timeline as an SVG image (role="img", with a <title> and a <desc>); `ident` prefixes its element ids."""
    scale = _scale(timeline)
    xs = [scale.x(instant(m.when, timeline.timezone)) for m in timeline.marks]
    placed = _place(timeline.marks, xs, [_caption(m) for m in timeline.marks])
    rows_used = max((r + 1 for r, _ in placed if r is not None), default=1)
    axis = TOP + 14 + rows_used * ROW
    height = axis + 70
    now_x = scale.x(timeline.now)
    key = escape(ident)
    parts = [f'<svg class="timeline-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
             f'width="100%" role="img" aria-labelledby="{key}-title {key}-desc" preserveAspectRatio="xMinYMin meet">',
             f'<title id="{key}-title">Timeline of the case\'s dates and timers</title>',
             f'<desc id="{key}-desc">{escape(_describe(timeline))}</desc>',
             f'<defs><marker id="{key}-arrowhead" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="5" '
             'markerHeight="5" orient="auto-start-reverse"><path class="tl-arrowhead" d="M0,0 L10,5 L0,10 z"/>'
             '</marker></defs>',
             f'<line class="tl-axis" x1="{MARGIN}" y1="{axis:.1f}" x2="{WIDTH - MARGIN}" y2="{axis:.1f}"/>']
    for x, caption in _ticks(scale, timeline.timezone):
        parts.append(f'<line class="tl-tick" x1="{x:.1f}" y1="{axis - 4:.1f}" x2="{x:.1f}" y2="{axis + 4:.1f}"/>'
                     f'<text class="tl-month" x="{x:.1f}" y="{axis + 17:.1f}">{escape(caption)}</text>')
    parts.append(f'<line class="tl-today" x1="{now_x:.1f}" y1="{TOP - 6}" x2="{now_x:.1f}" y2="{axis + 8:.1f}"/>'
                 f'<text class="tl-today-label" x="{now_x:.1f}" y="{TOP - 10}" '
                 f'text-anchor="{"end" if now_x > WIDTH - 120 else "start" if now_x < 120 else "middle"}">'
                 f'Today {escape(timeline.today.isoformat())}</text>')
    parts += [*_arrows(timeline, scale, axis, key), *_marks(timeline, scale, axis), *_legend(axis + 50), "</svg>"]
    return Markup("".join(parts))  # noqa: S704 - every text in it went through escape(); the rest is ours
