#!/usr/bin/env bash
# Runs a benchmark (exact scan, hnsw or ivf) against a locally built pgvector.
# pgvector must already be installed into the same PostgreSQL (build it from
# its repository with `make && make install`; it is not part of this repo).
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
# (shards and replicas measure vector_ext alone: no pgvector)
if [ "${1:-}" != shards ] && [ "${1:-}" != replicas ] && [ ! -f "$("$PG_CONFIG" --sharedir)/extension/vector.control" ]; then
  echo "pgvector is not installed into $("$PG_CONFIG" --sharedir); build it locally first" >&2
  exit 1
fi
# Room for both systems' tables in shared_buffers (about 1.8 GB in all),
# unless the caller says otherwise.
export VECTOR_EXT_PGOPTS="${VECTOR_EXT_PGOPTS:--c shared_buffers=4GB}"
setup_all
VENV="$ROOT/target/venv"
[ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV"; "$VENV/bin/pip" install -q -r "$ROOT/tests/python/requirements.txt"; }
# bench/run.sh exact|hnsw|ivf|halfvec|churn|ip|planner|quantized|inserts|scale|shards|replicas|plot-quantized [options]
case "${1:-}" in
  exact) shift; "$VENV/bin/python" "$ROOT/bench/exact_scan.py" "$@" ;;
  hnsw) shift; "$VENV/bin/python" "$ROOT/bench/hnsw.py" "$@" ;;
  ivf) shift; "$VENV/bin/python" "$ROOT/bench/ivf.py" "$@" ;;
  halfvec) shift; "$VENV/bin/python" "$ROOT/bench/halfvec.py" "$@" ;;
  churn) shift; "$VENV/bin/python" "$ROOT/bench/churn.py" "$@" ;;
  ip) shift; "$VENV/bin/python" "$ROOT/bench/ip_recall.py" "$@" ;;
  planner) shift; "$VENV/bin/python" "$ROOT/bench/planner.py" "$@" ;;
  quantized) shift; "$VENV/bin/python" "$ROOT/bench/quantized.py" "$@" ;;
  inserts) shift; "$VENV/bin/python" "$ROOT/bench/inserts.py" "$@" ;;
  scale) shift; "$VENV/bin/python" "$ROOT/bench/scale.py" "$@" ;;
  shards) shift; "$VENV/bin/python" "$ROOT/bench/shards.py" "$@" ;;
  replicas) shift; "$VENV/bin/python" "$ROOT/bench/replicas.py" "$@" ;;
  plot-quantized) shift
    "$VENV/bin/python" -c "import matplotlib" 2>/dev/null || "$VENV/bin/pip" install -q matplotlib==3.11.2
    "$VENV/bin/python" "$ROOT/bench/plot_quantized.py" "$@" ;;
  *) echo "usage: bash bench/run.sh exact|hnsw|ivf|halfvec|churn|ip|planner|quantized|inserts|scale|shards|replicas|plot-quantized [options]" >&2; exit 2 ;;
esac
