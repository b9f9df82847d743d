"""The compose file's ``ldap`` service: the test sandbox's slapd, made to keep its data.

Why not :class:`devtools.slapd_sandbox.Sandbox` as it is: the sandbox is throwaway, so its
database runs with ``olcDbNoSync: TRUE`` (tests are faster without an fsync per write, and lose
nothing they need when the host crashes). A directory that a syncd container provisions must
survive a crash or a ``docker kill``: here the configuration is the sandbox's (one home for the
schema, ppolicy, lastbind, the service DN and its access rules) with the no-sync line taken out,
and the folder given with ``--root`` (the compose file's named volume) is reused on every start,
so what was written before a restart is still there after it.

``python -m devtools.slapd_service --root DIR [--port N] [--listen-host H]`` runs it in the
foreground until SIGTERM (what ``docker stop`` sends).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path

from devtools.slapd_sandbox import Sandbox

NO_SYNC = "olcDbNoSync: TRUE\n"


class DurableSandbox(Sandbox):
    """The sandbox's configuration with every write synced to disk (no ``olcDbNoSync``)."""

    def _config_ldif(self) -> str:
        ldif = super()._config_ldif()
        if NO_SYNC not in ldif:  # the sandbox changed: say so rather than run unsynced
            raise RuntimeError("devtools.slapd_sandbox no longer sets olcDbNoSync as expected")
        return ldif.replace(NO_SYNC, "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, required=True, help="the data volume")
    parser.add_argument("--suffix", default="dc=example,dc=gov,dc=vn")
    parser.add_argument("--port", type=int, default=1389)
    parser.add_argument("--listen-host", default="127.0.0.1")
    args = parser.parse_args()
    sandbox = DurableSandbox(
        args.root, suffix=args.suffix, port=args.port, listen_host=args.listen_host
    )
    # read only when the volume is new: the passwords are then in the database
    sandbox.admin_password = os.environ.get("SLAPD_ADMIN_PASSWORD", sandbox.admin_password)
    sandbox.service_password = os.environ.get("SLAPD_SERVICE_PASSWORD", sandbox.service_password)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sandbox.start()
    print(f"slapd serving {args.suffix} on {args.listen_host}:{args.port}", flush=True)
    while not stop.wait(1.0):
        if sandbox.process is not None and sandbox.process.poll() is not None:
            raise SystemExit(f"slapd exited with {sandbox.process.returncode}")
    print("stopping slapd", flush=True)
    sandbox.stop()


if __name__ == "__main__":
    main()
