#!/usr/bin/env python3
"""Makes the test fixture tests/data/ds-a-20k from the full ds-a-npm-minilm
data set (100k x 384 sentence embeddings of npm package summaries, float16).

    python3 scripts/make_fixture.py /path/to/ds-a-npm-minilm

The fixture is the first 20,000 base rows, the first 500 queries and the
first 4,000 extra rows, byte for byte (float16 .npy, the source's format),
plus the exact top-10 base rows of each query for cosine, L2 and inner
product, computed here in float64 over the float16 values widened exactly.
The tests compute their own exact answers as well; test_fixture checks that
theirs and these agree, so a damaged fixture or a wrong oracle shows up.
Needs numpy (the test venv, target/venv, has it).
"""

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

ROWS, QUERIES, EXTRA, K = 20_000, 500, 4_000, 10


def top_k(base, queries, metric):
    b = base.astype(np.float64)
    q = queries.astype(np.float64)
    if metric == "cos":
        d = -(q / np.linalg.norm(q, axis=1, keepdims=True)) @ (b / np.linalg.norm(b, axis=1, keepdims=True)).T
    elif metric == "ip":
        d = -(q @ b.T)
    else:
        d = (q**2).sum(1)[:, None] - 2 * q @ b.T + (b**2).sum(1)[None, :]
    # stable sort: equal distances keep the lower row id first
    return np.argsort(d, axis=1, kind="stable")[:, :K].astype(np.int32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", type=Path, help="directory of ds-a-npm-minilm (base.f16.npy, query.f16.npy, extra.f16.npy)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "data" / "ds-a-20k")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    parts = {
        "base": np.load(a.source / "base.f16.npy", mmap_mode="r")[:ROWS],
        "query": np.load(a.source / "query.f16.npy", mmap_mode="r")[:QUERIES],
        "extra": np.load(a.source / "extra.f16.npy", mmap_mode="r")[:EXTRA],
    }
    files = {}
    for name, m in parts.items():
        m = np.ascontiguousarray(m)
        assert m.dtype == np.float16 and m.shape[1] == 384, (name, m.dtype, m.shape)
        np.save(a.out / f"{name}.f16.npy", m)
        files[f"{name}.f16.npy"] = f"{m.shape[0]} x {m.shape[1]} float16"
    for metric in ["cos", "l2", "ip"]:
        gt = top_k(parts["base"], parts["query"], metric)
        np.save(a.out / f"gt_{metric}.i32.npy", gt)
        files[f"gt_{metric}.i32.npy"] = f"{QUERIES} x {K} int32: exact nearest base rows by {metric}, nearest first"
    source_meta = json.loads((a.source / "meta.json").read_text()) if (a.source / "meta.json").exists() else {}
    meta = {
        "name": "ds-a-20k",
        "made_by": "scripts/make_fixture.py",
        "source": source_meta.get("name", a.source.name),
        "source_description": source_meta.get("source"),
        "model": source_meta.get("model"),
        "rows": "row i of base = table id i; extra rows are inserted by the tests with ids from 100000",
        "files": files,
        "sha256": {
            f: hashlib.sha256((a.out / f).read_bytes()).hexdigest() for f in sorted(files)
        },
    }
    (a.out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {a.out}: " + ", ".join(sorted(files)))


if __name__ == "__main__":
    main()
