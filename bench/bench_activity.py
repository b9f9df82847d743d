"""Benchmark: how fast a mail log is read into last login/send/receive per address.

Not a test: it prints figures. Run: `python bench/bench_activity.py [LINES]` (default
1,000,000 lines of Postfix/Dovecot syslog, 20,000 people, three in five lines relevant): the
first read of the whole file, then a read of 10,000 new lines from the saved position, then a
read that finds nothing new, and the size of the saved progress.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
import zoneinfo
from pathlib import Path

from connectors.activity.mail_log import MailLogSource

LINES = (
    "Nov {d:2d} {t} mail postfix/smtpd[30705]: 79BB32241BC: client=localhost[127.0.0.1], "
    "sasl_method=PLAIN, sasl_username={u}\n",
    "Nov {d:2d} {t} mail postfix/virtual[30709]: 7B0082241BD: to=<{u}@test.gov.vn>, "
    "relay=virtual, delay=0.02, delays=0/0.02/0/0, dsn=2.0.0, status=sent (delivered to maildir)\n",
    "Nov {d:2d} {t} mail dovecot: imap-login: Login: user=<{u}>, method=PLAIN, rip=127.0.0.1, "
    "lip=127.0.0.1, mpid=29931, secured, session=<SvRYEilhoq5/AAAB>\n",
    "Nov {d:2d} {t} mail postfix/qmgr[30639]: 79BB32241BC: removed\n",
    "Nov {d:2d} {t} mail postfix/smtpd[30705]: connect from localhost[127.0.0.1]\n",
)


def _write(path: Path, n: int, day: int, rnd: random.Random, users: list[str]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for i in range(n):
            t = f"{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:{rnd.randrange(60):02d}"
            d = day or 1 + i * 25 // n
            fh.write(rnd.choice(LINES).format(d=d, t=t, u=rnd.choice(users)))


def main(n: int) -> None:
    rnd = random.Random(1)
    users = [f"nguoi{i}.skhcn" for i in range(20_000)]
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        log = Path(tmp) / "mail.log"
        _write(log, n, 0, rnd, users)
        source = MailLogSource(
            log,
            "bench",
            frozenset({"login", "send", "receive"}),
            zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh"),
            "test.gov.vn",
            Path(tmp) / "state",
        )
        t0 = time.perf_counter()
        seen = source.last_activity()
        first = time.perf_counter() - t0
        _write(log, 10_000, 26, rnd, users)
        t0 = time.perf_counter()
        source.last_activity()
        more = time.perf_counter() - t0
        t0 = time.perf_counter()
        source.last_activity()
        none = time.perf_counter() - t0
        saved = sum(p.stat().st_size for p in (Path(tmp) / "state").iterdir())
        mb = log.stat().st_size / 1e6
    print(f"first read      {n:>9,} lines ({mb:.0f} MB): {first:6.2f} s ({n / first:,.0f} lines/s)")
    print(f"                {len(seen):>9,} addresses")
    print(f"10,000 new lines from the saved position: {more:.2f} s; nothing new: {none:.2f} s")
    print(f"saved progress: {saved / 1e6:.1f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
