"""A chart for a result only where one helps: a line over time, bars over categories, never one bar.

`chart_spec` decides (pure, tested without a browser); `chart_png` draws with matplotlib's Agg
backend (no display needed), so each answer keeps its chart as a small image in the conversation.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import matplotlib

matplotlib.use("Agg")  # before pyplot is imported anywhere: draw to memory, never to a display

import matplotlib.dates as mdates  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from gradio_ui.format import Cell, ColumnFormat, format_number, format_time  # noqa: E402

# Past this many categories a bar chart stops being readable; the table says it better.
MAX_BARS = 30
MAX_POINTS = 1000
_HORIZONTAL_FROM = 8  # labels of this many bars and more no longer fit side by side


@dataclass(frozen=True)
class ChartSpec:
    """A chart of one label column against one numeric column.

    Attributes:
        kind: `line` when the labels are dates or times (sorted by time), `bar` for categories (in
            the result's own order, which is often "top N by value").
        x: The label column.
        y: The numeric column.
        labels: The x values: datetimes for a line, text for bars.
        values: The y values.
    """

    kind: Literal["bar", "line"]
    x: ColumnFormat
    y: ColumnFormat
    labels: list[datetime] | list[str]
    values: list[float]

    @property
    def title(self) -> str:
        """What the chart shows, such as `revenue by month`."""
        return f"{self.y.name} by {self.x.name}"


def chart_spec(formats: list[ColumnFormat], rows: list[list[Cell]]) -> ChartSpec | None:
    """The chart for a result, or None when no chart would help.

    A chart needs exactly one label column (text, boolean or temporal) and one numeric column, and
    at least two distinct labels: one bar is just the number, which the answer already says.
    """
    if len(formats) != 2:
        return None
    label_index = next((i for i, column in enumerate(formats) if not column.numeric), None)
    if label_index is None or not formats[1 - label_index].numeric:
        return None
    x, y = formats[label_index], formats[1 - label_index]
    pairs = [(row[label_index], row[1 - label_index]) for row in rows if row[1 - label_index] is not None]
    if len({label for label, _ in pairs}) < 2:
        return None
    if x.temporal:
        try:
            points = sorted((datetime.fromisoformat(str(label)), float(value))  # type: ignore[arg-type]
                            for label, value in pairs if label is not None)
        except ValueError:
            return None
        if not 2 <= len(points) <= MAX_POINTS:
            return None
        return ChartSpec("line", x, y, [point for point, _ in points], [value for _, value in points])
    if len(pairs) > MAX_BARS:
        return None
    texts = ["–" if label is None else ("yes" if label is True else "no" if label is False else str(label))
             for label, _ in pairs]
    return ChartSpec("bar", x, y, texts, [float(value) for _, value in pairs])  # type: ignore[arg-type]


def chart_png(spec: ChartSpec) -> bytes:
    """Draw the chart as a PNG (about 20 KB)."""
    figure = Figure(figsize=(6.4, 3.2), dpi=100, layout="constrained")
    axes = figure.subplots()
    number_axis = FuncFormatter(lambda value, _: format_number(value, percent=spec.y.kind == "percent"))
    if spec.kind == "line":
        axes.plot(spec.labels, spec.values, marker="o" if len(spec.values) <= 40 else None,
                  color="#4f46e5", linewidth=2)
        locator = mdates.AutoDateLocator(maxticks=8)
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(FuncFormatter(
            lambda value, _: format_time(mdates.num2date(value).replace(tzinfo=None), spec.x.kind)))
        axes.yaxis.set_major_formatter(number_axis)
        axes.set_xlabel(spec.x.name)
        axes.set_ylabel(spec.y.name)
        figure.autofmt_xdate(rotation=30)
    elif len(spec.values) >= _HORIZONTAL_FROM:
        positions = range(len(spec.values))
        axes.barh(positions, spec.values, color="#4f46e5")
        axes.set_yticks(list(positions), [str(label)[:30] for label in spec.labels])
        axes.invert_yaxis()  # the first row of the result at the top
        axes.xaxis.set_major_formatter(number_axis)
        axes.set_xlabel(spec.y.name)
        figure.set_figheight(max(3.2, 0.28 * len(spec.values) + 0.8))
    else:
        positions = range(len(spec.values))
        axes.bar(positions, spec.values, color="#4f46e5")
        axes.set_xticks(list(positions), [str(label)[:20] for label in spec.labels])
        axes.yaxis.set_major_formatter(number_axis)
        axes.set_xlabel(spec.x.name)
        axes.set_ylabel(spec.y.name)
    axes.set_title(spec.title)
    axes.grid(axis="x" if spec.kind == "bar" and len(spec.values) >= _HORIZONTAL_FROM else "y", alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
