"""The real-embedding fixture is what its meta.json says it is, and the
tests' exact oracle (helpers.exact, numpy in float32) finds the nearest rows
the fixture script found in float64: a damaged fixture or a wrong oracle
would make every recall figure in this suite meaningless."""

import hashlib
import json

import numpy as np
import pytest

from helpers import DATA, K, exact


def test_files_match_their_checksums():
    meta = json.loads((DATA / "meta.json").read_text())
    for name, digest in meta["sha256"].items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("metric,name", [("cosine", "cos"), ("l2", "l2"), ("ip", "ip")])
def test_exact_oracle_agrees_with_stored_truth(data, metric, name):
    base, queries, _ = data
    truth = np.load(DATA / f"gt_{name}.i32.npy")
    assert truth.shape == (len(queries), K)
    found = exact(base, queries, metric)
    same = np.mean([len(set(f.tolist()) & set(t.tolist())) / K for f, t in zip(found, truth)])
    # float32 against float64 may swap rows whose distances tie to the last
    # bits at the 10th place; anything more is a real disagreement
    assert same >= 0.999, f"{metric}: {same}"
