"""Benchmark: uids for 100,000 generated names in one batch (target ≤ 2 s on 2 cores).

Not a test: it prints figures. Run with `make bench` or `python bench/bench_uid.py [COUNT]`.
"""

from __future__ import annotations

import sys
import time

from connectors.regulations import SCHEMES as BUILTIN
from devtools.samples import names
from syncd.naming import Status, UidPool, allocate, parse_name

ORGS = ["skhcn", "syt", "sgd", "stc", "tgg", "snv", "vpubnd", "ubndtp"]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    people = [(n, ORGS[i % len(ORGS)]) for i, n in enumerate(names(count, seed=1))]
    print(f"{count} generated names, {len(set(people))} distinct (name, org) pairs")
    for scheme_id in ("caobang-2025", "caobang-2011", "hungyen-2025", "tuyenquang-2025"):
        scheme = BUILTIN[scheme_id]
        pool = UidPool.build(reserved=["sokhcn", "ubndtangiang"])
        parse_name.cache_clear()  # every scheme pays for parsing from cold
        start = time.perf_counter()
        results = [allocate(scheme, n, o, pool) for n, o in people]
        elapsed = time.perf_counter() - start
        ok = sum(r.status is Status.OK for r in results)
        pending = sum(r.status is Status.NEEDS_DECISION for r in results)
        print(
            f"{scheme_id:16} {elapsed:6.2f} s  {count / elapsed:9,.0f} names/s  "
            f"ok={ok} needs-decision={pending}"
        )
    parse_name.cache_clear()
    start = time.perf_counter()
    for n, _ in people:
        parse_name(n)
    print(f"parse only (cold cache) {time.perf_counter() - start:6.2f} s")


if __name__ == "__main__":
    main()
