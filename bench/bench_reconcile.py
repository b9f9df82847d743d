"""Benchmark: a 10,000-person roster into an empty directory, then a no-op reconcile.

Not a test: it prints figures. It starts its own throwaway slapd (loopback, temp directory),
so it needs Debian's slapd. Run: `make bench` or `python bench/bench_reconcile.py [PEOPLE]`.
The no-op reconcile is compared with a bare ldap3 paged read of the same entries, to show what
syncd adds on top of reading the directory once.
"""

from __future__ import annotations

import csv
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

from ldap3 import NONE, SUBTREE, Connection, Server

from connectors import runner
from connectors.daemon import configure_logging
from connectors.directory.openldap import ATTRIBUTES
from connectors.loading import load_config
from connectors.store import write_private
from devtools.samples import full_name
from devtools.slapd_sandbox import Sandbox

ORGS = ["skhcn", "syt", "sgddt", "stc", "snv", "vpubnd", "tgg", "tpn", "tkh", "sxd"]


def main() -> None:
    configure_logging(json_lines=False, stream=sys.stderr, level=logging.WARNING)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    root = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    rng = random.Random(7)
    orgs = root / "orgs.yaml"
    orgs.write_text(
        "orgs:\n" + "".join(f"  - {{code: {o}, name: Đơn vị {o}, mailbox: so{o}}}\n" for o in ORGS),
        encoding="utf-8",
    )
    roster = root / "roster.csv"
    with roster.open("w", encoding="utf-8", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["Mã cán bộ", "Họ và tên", "Mã đơn vị", "Chức vụ"])
        for i in range(count):
            out.writerow([f"E{i:06d}", full_name(rng), ORGS[i % len(ORGS)], "Chuyên viên"])
    with Sandbox(root / "slapd", suffix="dc=bench,dc=gov,dc=vn") as slapd:
        write_private(root / "bind.pw", slapd.service_password)
        (root / "syncd.yaml").write_text(
            f"""profile: caobang-2025
domain: bench.gov.vn
directory: {{url: "{slapd.url}", bind_dn: "{slapd.service_dn}", bind_password_file: bind.pw,
            base_dn: "{slapd.people_dn}", page_size: 1000}}
paths: {{inbox: inbox, state: state, outbox: outbox, audit_log: state/audit.jsonl}}
orgs: orgs.yaml
""",
            encoding="utf-8",
        )
        cfg = load_config(root / "syncd.yaml")
        t0 = time.perf_counter()
        first = runner.run(cfg, rosters=[roster])
        t_first = time.perf_counter() - t0
        assert first.result is not None and not first.result.failed, first.result
        created = len(first.result.outcomes)
        t0 = time.perf_counter()
        noop = runner.run(cfg, rosters=[roster], dry_run=True)
        t_noop = time.perf_counter() - t0
        assert noop.plan is not None and not noop.plan.actions, noop.plan.counts()

        conn = Connection(
            Server(slapd.url, get_info=NONE),
            slapd.service_dn,
            slapd.service_password,
            auto_bind=True,
        )
        t0 = time.perf_counter()
        n = sum(
            1
            for e in conn.extend.standard.paged_search(
                slapd.people_dn,
                "(objectClass=inetOrgPerson)",
                SUBTREE,
                attributes=ATTRIBUTES,
                paged_size=1000,
                generator=True,
            )
            if e.get("type") == "searchResEntry"
        )
        t_read = time.perf_counter() - t0
    print(f"people on the roster:           {count}")
    print(
        f"first reconcile (empty dir):    {t_first:7.2f} s  ({created} actions, "
        f"{created / t_first:,.0f} actions/s incl. password set)"
    )
    print(f"no-op reconcile (plan only):    {t_noop:7.2f} s  (0 actions)")
    print(f"bare ldap3 paged read:          {t_read:7.2f} s  ({n} entries)")
    print(f"no-op / bare read:              {t_noop / t_read:7.2f} x")


if __name__ == "__main__":
    main()
