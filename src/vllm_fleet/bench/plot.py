"""The benchmark's PNG: throughput and latency by concurrency level."""

from __future__ import annotations

from vllm_fleet.bench.load import STANDIN_LABEL, LevelResult


def write_plot(path: str, levels: list[LevelResult], standin: bool) -> str:
    """Write a PNG of tok/s and TTFT by concurrency; returns a sentence for the user."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return f"--plot skipped: matplotlib is not installed (pip install matplotlib); {path} not written"
    xs = [lv.concurrency for lv in levels]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(xs, [lv.output_tok_s for lv in levels], marker="o")
    ax1.set(xlabel="concurrency", ylabel="output tok/s", xscale="log")
    ax2.plot(xs, [(lv.ttft_p50_s or 0) * 1000 for lv in levels], marker="o", label="TTFT p50")
    ax2.plot(xs, [(lv.itl_p50_s or 0) * 1000 for lv in levels], marker="o", label="ITL p50")
    ax2.set(xlabel="concurrency", ylabel="ms", xscale="log")
    ax2.legend()
    if standin:
        fig.suptitle(STANDIN_LABEL, color="red")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return f"plot written to {path}"
