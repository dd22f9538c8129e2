"""The benchmark's PNG: throughput, TTFT and ITL by concurrency level, for people to read.

Choices, each for a complaint about the first version: the x axis is the levels themselves
(evenly spaced categories labelled 1, 8, 32, not a log axis reading 10^0/10^1); throughput is
drawn from 0 (an axis starting at 400 turned 430 vs 410 tok/s into a cliff); TTFT and ITL each
get their own panel, since a shared ms axis flattened ITL (tens of ms) against TTFT (seconds);
p50 and p95 both, as the table has them; and a title saying what was measured. A stand-in's
figures carry a label no one can miss: they are simulated, not GPU figures.

matplotlib is the optional `bench` extra: `require_matplotlib` is called before any load is
sent, so a missing install is a sentence up front, not a lost sweep at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from vllm_fleet.bench.load import LevelResult

STANDIN_BANNER = "STAND-IN figures, not GPU figures"
INSTALL_HINT = "pip install 'vllm-fleet[bench]'"
P50_STYLE = {"linestyle": "-", "marker": "o", "linewidth": 2.0}
P95_STYLE = {"linestyle": "--", "marker": "s", "linewidth": 1.5}


class PlotUnavailable(Exception):
    """matplotlib cannot be imported; the message says how to install it."""


@dataclass
class PlotInfo:
    """What the title says: what was measured, where, and how."""

    model: str
    url: str
    max_tokens: int
    standin: bool


def require_matplotlib() -> None:
    """Raise PlotUnavailable (a sentence) unless matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise PlotUnavailable(f"--plot needs matplotlib, which cannot be imported here ({exc}); "
                              f"{INSTALL_HINT}, or leave out --plot") from None


def _ms(value: float | None) -> float:
    return math.nan if value is None else value * 1000  # NaN: matplotlib leaves a gap, not a fake 0


def _requests_text(levels: list[LevelResult]) -> str:
    counts = sorted({lv.requests for lv in levels})
    if len(counts) == 1:
        return f"{counts[0]} requests per level"
    return "requests per level " + ", ".join(str(lv.requests) for lv in levels)


def _label(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _latency_panel(ax: Any, xs: list[int], levels: list[LevelResult], p50: str, p95: str, title: str,
                   no_data: str) -> None:
    y50 = [_ms(getattr(lv, p50)) for lv in levels]
    y95 = [_ms(getattr(lv, p95)) for lv in levels]
    ax.plot(xs, y50, color="tab:blue", label="p50", zorder=3, **P50_STYLE)
    ax.plot(xs, y95, color="tab:orange", label="p95", zorder=2, **P95_STYLE)
    finite = [v for v in y50 + y95 if not math.isnan(v)]
    ax.set_ylim(0, (max(finite) if finite and max(finite) > 0 else 1.0) * 1.2)
    ax.set_title(title)
    ax.set_ylabel("ms")
    # Each value written at its point, the table's numbers on the plot: p95 above its point; p50
    # below and to the right, where a line rising with concurrency is not, except near 0, where
    # that would sit on the axis: there above and to the right.
    top = ax.get_ylim()[1]
    for x, v in zip(xs, y95):
        if not math.isnan(v):
            ax.annotate(_label(v), (x, v), textcoords="offset points", xytext=(0, 7), ha="center", va="bottom",
                        fontsize=8, color="tab:orange")
    for x, v in zip(xs, y50):
        if not math.isnan(v):
            low = v < 0.08 * top
            ax.annotate(_label(v), (x, v), textcoords="offset points", xytext=(7, 3 if low else -4), ha="left",
                        va="bottom" if low else "top", fontsize=8, color="tab:blue")
    if finite:
        ax.legend(loc="upper left", frameon=False)
    else:
        ax.text(0.5, 0.5, no_data, transform=ax.transAxes, ha="center", va="center", color="gray", wrap=True)


def build_figure(levels: list[LevelResult], info: PlotInfo) -> Any:
    """The matplotlib Figure (tests inspect it; write_plot saves it)."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed, and none is touched
    import matplotlib.pyplot as plt

    xs = list(range(len(levels)))
    labels = [str(lv.concurrency) for lv in levels]
    fig, (ax_tok, ax_ttft, ax_itl) = plt.subplots(1, 3, figsize=(15, 6.2 if info.standin else 5.6))
    # Room on top for the two title lines (and the stand-in banner below them).
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.13, top=0.71 if info.standin else 0.80, wspace=0.22)

    tok = [lv.output_tok_s for lv in levels]
    bars = ax_tok.bar(xs, tok, width=0.6, color="tab:green")
    ax_tok.set_ylim(0, (max(tok) if tok and max(tok) > 0 else 1.0) * 1.25)
    ax_tok.set_title("output throughput")
    ax_tok.set_ylabel("output tokens/s, all requests together")
    for bar, lv in zip(bars, levels):
        text = f"{lv.output_tok_s:.1f}"
        if lv.spec_acceptance is not None:
            text += f"\nspec acc. {lv.spec_acceptance:.0%}"
        if lv.failed:  # a level with failures is not comparable; say so where its figure is
            text += f"\n{lv.failed} of {lv.requests} failed"
            bar.set_color("#e59866")
        ax_tok.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), textcoords="offset points",
                        xytext=(0, 4), ha="center", va="bottom", fontsize=8,
                        color="#c0392b" if lv.failed else "black", fontweight="bold" if lv.failed else "normal")

    no_success = "no request succeeded"
    _latency_panel(ax_ttft, xs, levels, "ttft_p50_s", "ttft_p95_s", "time to first token (TTFT)", no_success)
    _latency_panel(ax_itl, xs, levels, "itl_p50_s", "itl_p95_s", "inter-token latency (ITL)",
                   "no ITL: with max_tokens 1 each request streams one token" if info.max_tokens < 2 else no_success)

    for ax in (ax_tok, ax_ttft, ax_itl):
        ax.set_xticks(xs, labels)
        ax.set_xlim(-0.6, len(levels) - 0.4)
        ax.set_xlabel("concurrency (requests in flight)")
        ax.grid(axis="y", alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)

    fig.suptitle(f"vLLM serving benchmark: {info.model}\n{info.url}  ·  streaming chat, max_tokens "
                 f"{info.max_tokens}  ·  {_requests_text(levels)}", fontsize=12, y=0.975)
    if info.standin:
        fig.text(0.5, 0.83, STANDIN_BANNER, ha="center", va="center", fontsize=20, fontweight="bold",
                 color="white", bbox={"boxstyle": "round,pad=0.3", "facecolor": "#c0392b", "edgecolor": "none"})
        # Across the data as well: a cropped or pasted panel still says it.
        for ax in (ax_tok, ax_ttft, ax_itl):
            ax.text(0.5, 0.45, "STAND-IN", transform=ax.transAxes, ha="center", va="center", fontsize=34,
                    fontweight="bold", color="#c0392b", alpha=0.12, rotation=25, zorder=5)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    fig.text(0.99, 0.015, f"vllm-fleet bench  ·  {stamp}", ha="right", va="bottom", fontsize=8, color="gray")
    return fig


def write_plot(path: str, levels: list[LevelResult], info: PlotInfo) -> str:
    """Write the PNG; returns a sentence for the user. OSError propagates (the caller names it)."""
    fig = build_figure(levels, info)
    import matplotlib.pyplot as plt  # after build_figure chose the Agg backend

    try:
        fig.savefig(path, format="png", dpi=110)
    finally:
        plt.close(fig)
    return f"plot written to {path}"
