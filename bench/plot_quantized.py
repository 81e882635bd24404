"""Draws the recall/QPS curves bench/quantized.py wrote (one panel per JSON
file) into a PNG:

    bash bench/run.sh plot-quantized bench/quantized-384.json \
        bench/quantized-1536.json --out bench/quantized.png
"""

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"pgvector": ("tab:gray", "s"), "vector_ext": ("tab:blue", "o"),
         "rabitq 4-bit": ("tab:green", "^"), "rabitq 1-bit": ("tab:orange", "v")}


def style(label):
    for key in ("rabitq 4-bit", "rabitq 1-bit", "pgvector", "vector_ext"):
        if key in label:
            return STYLE[key]
    return ("black", "x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    runs = [json.load(open(p)) for p in args.results]
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4.5), squeeze=False)
    for ax, run in zip(axes[0], runs):
        for idx in run["indexes"]:
            color, marker = style(idx["label"])
            recall = [p[1] for p in idx["sweep"]]
            qps = [p[2] for p in idx["sweep"]]
            size = idx["size_bytes"] / 2**20
            ax.plot(recall, qps, marker=marker, color=color,
                    label=f"{idx['label']} ({size:.0f} MiB, build {idx['build_s']:.0f} s)")
        ax.set_title(f"{run['rows']:,} x {run['dims']}, cosine, m 16, ef_construction 64")
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries per second (1 client)")
        ax.set_yscale("log")
        ax.axvline(0.95, color="lightgray", linewidth=0.8)
        ax.grid(True, which="both", linewidth=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
