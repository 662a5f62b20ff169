"""What share of an Elasticsearch count is its fingerprint aggregations.

    .venv/bin/python bench/es_fingerprint_cost.py [--node-dir data/bench-scale/es-node]

Restarts the single node that bench/scale.py left in --node-dir (its cohort index, prefix
`bench-scale`, stays on disk), turns the shard request cache off, and for a few questions of
bench/feasibility.py times each aggregation request a count sends, as sent and without its
bit-count aggregations (`sb`, `xb`, `tb`, `bk`: the XOR fingerprints and sketch buckets),
median of 3. The ratio is the cost of the fingerprints (docs/scaling.md)."""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from feasibility import QUERIES  # noqa: E402

import tests.conftest  # noqa: E402, F401  (first: tests.services.elasticsearch imports it)
import tests.services.elasticsearch as es  # noqa: E402
from catalogue.config import ElasticsearchSettings  # noqa: E402
from catalogue.index.elasticsearch.client import EsClient  # noqa: E402
from catalogue.index.elasticsearch.cohort import ElasticsearchCohortIndex  # noqa: E402

BITS = {"sb", "xb", "tb", "bk"}
ASKED = ("no criteria", "flat: CT and PT", "study 1999-2001 with CT and SEG")


def without_bits(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: without_bits(v) for k, v in node.items() if k not in BITS}
    if isinstance(node, list):
        return [without_bits(v) for v in node]
    return node


def median_seconds(send: Callable[[dict[str, Any]], Any], bodies: list[dict[str, Any]]) -> float:
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        for body in bodies:
            send(body)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-dir", type=Path, default=ROOT / "data/bench-scale/es-node")
    parser.add_argument("--heap", default="4g")
    args = parser.parse_args()
    es.HEAP = (f"-Xms{args.heap}", f"-Xmx{args.heap}")
    node = es.start_elasticsearch(args.node_dir)
    try:
        httpx.put(
            f"{node.url}/bench-scale*/_settings",
            json={"index": {"requests": {"cache": {"enable": False}}}},
            timeout=60,
        ).raise_for_status()
        settings = ElasticsearchSettings(
            url=node.url, index_prefix="bench-scale", request_timeout=300
        )
        index = ElasticsearchCohortIndex(EsClient(settings))
        search = index._search
        by_name = {q.name: q for q in QUERIES}
        for name in ASKED:
            question = by_name[name]
            bodies: list[dict[str, Any]] = []

            def capture(
                body: dict[str, Any], bodies: list[dict[str, Any]] = bodies
            ) -> dict[str, Any]:
                bodies.append(copy.deepcopy(body))
                return search(body)

            index._search = capture  # type: ignore[method-assign]
            started = time.perf_counter()
            index.count(question.cohort, strata=question.strata)
            whole = time.perf_counter() - started
            index._search = search  # type: ignore[method-assign]
            heavy = [b for b in bodies if b.get("aggs")]
            sent = median_seconds(search, heavy)
            bare = median_seconds(search, [without_bits(b) for b in heavy])
            print(
                f"{name}: count() {whole * 1000:.0f} ms in {len(bodies)} requests; its "
                f"aggregation requests {sent * 1000:.0f} ms as sent, {bare * 1000:.0f} ms "
                f"without bit counts ({sent / bare:.1f} x)",
                flush=True,
            )
        index.close()
    finally:
        es.stop_elasticsearch(node)


if __name__ == "__main__":
    main()
