"""``syncd.yaml``: the typed models are the schema, the validation and the shipped example.

One home for the configuration. Each setting is declared once, below, with its type, its default,
its constraints and a description for the operator; from these:

- :func:`parse_config` validates a file and reports *every* problem at once, each as
  ``file:line: key.path: message`` (unknown keys, wrong types, bad values, and the checks that
  involve several keys: exactly one bind secret source, ``start_tls`` with ``ldaps://``, a known
  naming scheme, valid rule overrides, ``smtp.sender`` for lock warnings, …). What ``syncd run``
  would refuse later (a cron expression, a metrics address) is refused here already.
- ``python -m connectors.config --example`` writes ``config/syncd.example.yaml``
  (a test fails when the committed file drifts from it).

The core (``syncd``) reads no configuration: it gets plain data (:mod:`syncd.settings`, the
:class:`~syncd.naming.schemes.Scheme`, the :class:`~syncd.regulation.Profile`) from here.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
import zoneinfo
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    model_validator,
)
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo

from connectors.directory import PROFILES as DIRECTORY_PROFILES
from connectors.directory import profile as directory_profile
from connectors.metrics import parse_listen
from connectors.regulations import PROFILES
from connectors.regulations import SCHEMES as BUILTIN
from connectors.schedule import crontab
from syncd.errors import SyncdError
from syncd.naming.schemes import Scheme, scheme_from_mapping
from syncd.regulation import Profile, with_overrides
from syncd.settings import AdoptionSettings, Safety, Unmatched

EXAMPLE_PATH = Path(__file__).resolve().parents[1] / "config" / "syncd.example.yaml"
EXAMPLE_COMMAND = "python -m connectors.config --example > config/syncd.example.yaml"
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


class ConfigError(SyncdError):
    """One or more configuration problems; ``issues`` lists every one."""

    def __init__(self, issues: list[str]) -> None:
        super().__init__("\n".join(issues))
        self.issues = issues


# -- value types -------------------------------------------------------------------------------


class Bad(ValueError):
    """A value's problem; the message follows the value, as in ``'x' is not a …``."""


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """A relative path is relative to the configuration file's folder."""
    base = (info.context or {}).get("base")
    return (base / value).resolve() if base is not None and not value.is_absolute() else value


def _positive_number(v: float) -> float:
    if v <= 0:
        raise Bad("must be greater than 0")
    return v


def _share(v: float) -> float:
    if not 0 <= v <= 1:
        raise Bad("must be a share between 0 and 1")
    return v


def _domain(v: str) -> str:
    if not re.fullmatch(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}", v):
        raise Bad("is not a lowercase mail domain")
    return v


def _delays(v: tuple[float, ...]) -> tuple[float, ...]:
    if len(v) > 10 or not all(0 <= x <= 60 for x in v):
        raise Bad("must be a list of at most 10 seconds (0-60)")
    return v


def _ldap_url(v: str) -> str:
    if not re.match(r"^ldaps?://", v):
        raise Bad("must start with ldap:// or ldaps://")
    return v


def _cron(v: str) -> str:
    try:
        crontab(v, UTC)
    except ValueError as exc:
        raise Bad(f"is not a cron expression (minute hour day month weekday): {exc}") from None
    return v


def _loopback(v: str) -> str:
    try:
        parse_listen(v)
    except SyncdError as exc:
        raise Bad(str(exc).removeprefix(f"daemon.metrics: {v!r} ")) from None
    return v


def _timezone(v: str) -> str:
    try:
        zoneinfo.ZoneInfo(v)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Bad(f"is not a time zone name, e.g. {DEFAULT_TIMEZONE}") from None
    return v


def _directory_profile(v: str) -> str:
    if v not in DIRECTORY_PROFILES:
        raise Bad(f"is not one of {', '.join(sorted(DIRECTORY_PROFILES))}")
    return v


def _profile_id(v: str) -> str:
    if v not in PROFILES:
        raise Bad(f"is not one of {', '.join(PROFILES)}")
    return v


def _template(v: dict[str, Any]) -> dict[str, Any]:
    try:
        tpl = scheme_from_mapping(v, source="naming.template")
    except SyncdError as exc:
        raise ValueError(str(exc).removeprefix("naming.template: ")) from None
    if tpl.id in BUILTIN:
        raise ValueError(
            f"id {tpl.id!r} is a regulation's scheme; a template needs an id of its own"
        )
    return v


ConfigPath = Annotated[Path, AfterValidator(_resolve)]
Positive = Annotated[StrictInt, Field(gt=0)]
Seconds = Annotated[StrictFloat, AfterValidator(_positive_number)]
Share = Annotated[StrictFloat, AfterValidator(_share)]
Cron = Annotated[StrictStr, AfterValidator(_cron)]

SECTION = ConfigDict(extra="forbid")
SECRET_SOURCES = ("bind_password_file", "bind_password_env", "bind_credential")


# -- the sections ------------------------------------------------------------------------------


def _hostname(v: str) -> str:
    label = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    if len(v) > 253 or not re.fullmatch(rf"{label}(?:\.{label})*", v):
        raise Bad("is not a host name (letters, digits, hyphens and dots)")
    return v


def _cos(v: str) -> str:
    if not v.strip() or len(v) > 256 or not v.isprintable():
        raise Bad("is not a class of service's name or zimbraId")
    return v


@dataclass(frozen=True, config=SECTION)
class ZimbraSettings:
    """Where Zimbra delivers and serves a new account: what ``zmprov createAccount`` sets from
    the server (or the class of service's pool) and syncd, writing LDAP directly, must set
    itself. Without ``zimbraMailHost`` Zimbra's proxy and mailbox server do not serve the
    account; without ``zimbraMailTransport`` its Postfix has no route to the mailbox."""

    mail_host: Annotated[StrictStr, AfterValidator(_hostname)] | None = Field(
        default=None,
        description="zimbra profile: the mailbox server of new accounts (zimbraMailHost: the "
        "zimbraServiceHostname of a server with the mailbox service, zmprov gs <server> "
        "zimbraServiceHostname); their zimbraMailTransport is lmtp:<mail_host>:<lmtp_port>. "
        "Required with the zimbra profile: without it new accounts would get neither, and "
        "Zimbra would neither deliver to them nor let them log in.",
        examples=["mail.caobang.gov.vn"],
    )
    lmtp_port: Annotated[StrictInt, Field(ge=1, le=65535)] = Field(
        default=7025,
        description="zimbra profile: the LMTP port of that server (zimbraLmtpBindPort; "
        "Zimbra's default 7025).",
    )
    cos: Annotated[StrictStr, AfterValidator(_cos)] | None = Field(
        default=None,
        description="zimbra profile: the class of service of new accounts, by name (cn=<name>,"
        "cn=cos,cn=zimbra) or zimbraId; written as its zimbraId (zimbraCOSId). Default: none "
        "written, and Zimbra applies the domain's default COS, else 'default'.",
        examples=["default"],
    )


@dataclass(frozen=True, config=SECTION)
class DirectoryConfig:
    """The LDAP directory behind the mail server (OpenLDAP, or Active Directory)."""

    url: Annotated[StrictStr, AfterValidator(_ldap_url)] = Field(
        description="The LDAP server. ldaps:// is TLS with the certificate always verified; "
        "ldap:// goes to a loopback address only, unless start_tls or allow_insecure.",
        examples=["ldaps://ldap.caobang.gov.vn"],
    )
    bind_dn: StrictStr = Field(
        description="The service account syncd binds as; give it write access to base_dn only "
        "(config/ldap/acl.ldif).",
        examples=["cn=syncd,ou=services,dc=caobang,dc=gov,dc=vn"],
    )
    base_dn: StrictStr = Field(
        description="The managed scope: syncd reads and changes people's mailboxes only under it.",
        examples=["ou=people,dc=caobang,dc=gov,dc=vn"],
    )
    layout: Literal["flat", "per-org"] = Field(
        default="flat",
        description="Where entries live. flat: uid=…,<base_dn>; per-org: "
        "uid=…,ou=<organisation code>,<base_dn>. The ad profile names them CN=<uid> (its "
        "per-org place is OU=<organisation code>).",
    )
    profile: Annotated[StrictStr, AfterValidator(_directory_profile)] = Field(
        default="openldap",
        description="The directory profile (connectors/directory/): openldap is OpenLDAP with "
        "ppolicy, syncd's schema and the layout below; openldap-ou keeps each account under "
        "ou=<organisation> and delivery as a standard class (see docs/mail-server.md); ad is "
        "Active Directory (user objects, sAMAccountName, unicodePwd over ldaps:// or StartTLS, "
        "userAccountControl; the forest's schema extended once with "
        "connectors/directory/syncd-schema-ad.ldif, see docs/mail-server.md). "
        f"One of: {', '.join(sorted(DIRECTORY_PROFILES))}.",
    )
    bind_password_file: ConfigPath | None = Field(
        default=None,
        description="The bind password comes from exactly one of bind_password_file, "
        "bind_password_env, bind_credential; never write the password itself in this file. "
        "This one: a file holding only the password, read as the service user: 0600 its own, "
        "or 0640 root:<its group> (syncd warns when others may read it); relative to this file.",
        examples=["/etc/syncd/bind.pw"],
    )
    bind_password_env: StrictStr | None = Field(
        default=None,
        description="… or the environment variable holding the bind password.",
        examples=["SYNCD_BIND_PASSWORD"],
    )
    bind_credential: StrictStr | None = Field(
        default=None,
        description="… or the systemd credential holding it (LoadCredential= in syncd.service): "
        "what the packaged unit gives the daemon, so the example uses it.",
        examples=["bind-password"],
        json_schema_extra={"x-in-example": True},
    )
    bind_credential_file: ConfigPath | None = Field(
        default=None,
        description="With bind_credential: the file LoadCredential= reads, for the syncd "
        "command outside systemd; run as root, it reads the file, then switches to the service "
        "user (the owner of paths.state). The file can stay 0600 root. Relative to this file.",
        examples=["/etc/syncd/bind.pw"],
        json_schema_extra={"x-in-example": True},
    )
    page_size: Positive = Field(
        default=500,
        description="Entries per page when syncd reads the whole directory; the server's size "
        "limit for the bind DN must allow it.",
    )
    timeout: Seconds = Field(
        default=10.0, description="Seconds to wait for a connection or an answer from the server."
    )
    ca_file: ConfigPath | None = Field(
        default=None,
        description="The CA certificate(s), PEM, that signed the server's certificate; default: "
        "the system's CAs (ad: the CA that issued the domain controllers' LDAPS "
        "certificates). Verification is never turned off.",
        examples=["/etc/ssl/certs/caobang-ca.pem"],
    )
    allow_insecure: StrictBool = Field(
        default=False,
        description="true: allow plain ldap:// to a host that is not loopback (the bind password "
        "crosses the network in clear; logged at every start). Only inside a closed network, "
        "e.g. docker compose.",
    )
    start_tls: StrictBool = Field(
        default=False,
        description="true: upgrade ldap:// with StartTLS (certificate verified). Not with "
        "ldaps://, which is TLS already.",
    )
    retry_delays: Annotated[tuple[StrictFloat, ...], AfterValidator(_delays)] = Field(
        default=(0.5, 2.0, 5.0),
        description="Seconds to wait before each retry of one action after a transient error "
        "(server busy, connection cut); at most 10 delays of 0-60 s; [] for no retry.",
    )
    delivery_attribute: StrictStr = Field(
        default="syncdDelivery",
        description="The attribute syncd sets to TRUE/FALSE to let mail in or not; the mail "
        "server's delivery filter must read it (config/ldap/syncd-schema.ldif; ad: "
        "syncd-schema-ad.ldif).",
    )
    quota_mb: Positive | None = Field(
        default=None,
        description="iredmail and zimbra profiles: the quota of a new personal mailbox, in MiB "
        "(mailQuota / zimbraMailQuota); default: the mail server's. Hưng Yên Đ8.1b: at least "
        "2048.",
        examples=[2048],
    )
    org_quota_mb: Positive | None = Field(
        default=None,
        description="iredmail and zimbra profiles: the quota of a new organisation mailbox, in "
        "MiB; default: the mail server's. Hưng Yên Đ8.1b: at least 10240.",
        examples=[10240],
    )
    mail_storage: StrictStr = Field(
        default="/var/vmail/vmail1",
        description="iredmail profile: where mailboxes are stored; a new one gets "
        "homeDirectory <mail_storage>/<domain>/<uid>/ (iRedMail's default base).",
    )
    post_change_hook: tuple[StrictStr, ...] = Field(
        default=(),
        description="zimbra profile: a command run after each change to an account, without "
        "a shell, {address} replaced by the account's address (Zimbra caches accounts); a "
        "failure is reported with the change. [] for none.",
        examples=[["/opt/zimbra/bin/zmprov", "flushCache", "account", "{address}"]],
    )
    zimbra: ZimbraSettings = Field(
        default_factory=lambda: ZimbraSettings(),
        description="zimbra profile: the mail routing of new accounts (docs/mail-server.md, "
        "zimbra). Only the zimbra profile uses it.",
    )


@dataclass(frozen=True, config=SECTION)
class Paths:
    """Where syncd reads and writes on this host; relative paths are relative to this file."""

    inbox: ConfigPath = Field(
        description="HR departments drop roster files (CSV / XLSX) here; a file is taken once it "
        "stops changing (daemon.settle_seconds).",
        examples=["/var/lib/syncd/inbox"],
    )
    state: ConfigPath = Field(
        description="syncd's own state: decisions, requests done, snapshots, run reports "
        "(mode 0700). Back it up with the directory.",
        examples=["/var/lib/syncd/state"],
    )
    outbox: ConfigPath = Field(
        description="Credential slips (new uid and first password) per organisation, each file "
        "mode 0600, for the organisation's IT contact.",
        examples=["/var/lib/syncd/outbox"],
    )
    audit_log: ConfigPath = Field(
        description="The audit log: one JSON line per change, chained so that an edit shows "
        "(syncd audit verify).",
        examples=["/var/log/syncd/audit.jsonl"],
    )


@dataclass(frozen=True, config=SECTION)
class NamingSettings:
    """How uids are made (quy tắc đặt tên hộp thư)."""

    scheme: StrictStr | None = Field(
        default=None,
        description="The uid scheme; default: the profile's own. Built in: "
        f"{', '.join(BUILTIN)}; or the id of the template below.",
        examples=["caobang-2011-unit"],
    )
    template: Annotated[dict[str, Any], AfterValidator(_template)] | None = Field(
        default=None,
        description="A province whose naming rule is not built in: id, pattern (tokens {given} "
        "{initials} {family} {middle} {org} {n}), collision (numeric | org-suffix | expand | "
        "manual), numeric_start, article (cited in the audit). Select it with scheme: <id>.",
        examples=[
            {
                "id": "daklak-2026",
                "pattern": "{family}{given}.{org}",
                "collision": "numeric",
                "numeric_start": 1,
                "article": "daklak-2026 Đ5",
            }
        ],
    )


@dataclass(frozen=True, config=SECTION)
class RosterSettings:
    """HR roster files (danh sách công chức, viên chức) as the organisations send them."""

    columns: dict[StrictStr, StrictStr] = Field(
        default_factory=dict,
        description="Header of each field when an organisation's files do not use the "
        "Vietnamese default headers: field: header text.",
        examples=[{"employee_number": "Số hiệu công chức", "full_name": "Họ và tên"}],
    )
    accept_valid_rows: StrictBool = Field(
        default=False,
        description="false: a file with a bad row is refused whole (nothing applies; the "
        "errors are reported); true: its valid rows apply and the bad ones are reported.",
    )
    sheet: StrictStr | None = Field(
        default=None,
        description="The XLSX sheet to read; default: the first.",
        examples=["Danh sách"],
    )


ActivityKind = Literal["login", "send", "receive"]


@dataclass(frozen=True, config=SECTION)
class ActivitySourceConfig:
    """One record of the mail server's activity (connectors/activity/, docs/mail-server.md)."""

    type: Literal["mail-log", "dovecot-dict", "dovecot-sql", "csv"] = Field(
        description="mail-log: a Postfix/Dovecot syslog file, read from where the last run "
        "stopped, across rotations (.1, .gz); dovecot-dict: the last_login plugin's dict file "
        "or fs folder; dovecot-sql: its SQL table (SQLite, as iRedMail's last_login); csv: "
        "address,last_activity[,kind]."
    )
    path: ConfigPath | None = Field(
        default=None, description="The log, dict file or folder, or CSV (not for dovecot-sql)."
    )
    dsn: StrictStr | None = Field(
        default=None, description="dovecot-sql only: sqlite:///<absolute path of the database>."
    )
    table: StrictStr = Field(default="last_login", description="dovecot-sql: the table.")
    activity: tuple[ActivityKind, ...] | None = Field(
        default=None,
        description="The kinds of activity this source reports (and is read for); default: "
        "mail-log login, send, receive; the Dovecot ones login.",
    )
    name: StrictStr | None = Field(
        default=None,
        description="How syncd show and the clocks' reasons name it; default: type and path.",
    )

    @model_validator(mode="after")
    def _where(self) -> ActivitySourceConfig:
        if self.type == "dovecot-sql":
            if self.dsn is None or self.path is not None:
                raise ValueError("dovecot-sql needs dsn (sqlite:///<path>) and no path")
            if not self.dsn.startswith("sqlite:////"):
                raise ValueError(
                    f"dsn {self.dsn!r}: only sqlite:///<absolute path> (sqlite:////var/…) is "
                    "supported; MySQL and PostgreSQL are not yet"
                )
        elif self.path is None or self.dsn is not None:
            raise ValueError(f"{self.type} needs path (and no dsn)")
        if self.activity is not None and not self.activity:
            raise ValueError("activity: name at least one of login, send, receive")
        return self


@dataclass(frozen=True, config=SECTION)
class LifecycleSettings:
    """Inputs and side effects of the lifecycle (lock, revoke, purge)."""

    activity_file: ConfigPath | None = Field(
        default=None,
        description="CSV address,last_activity exported from the mail server's logs, for the "
        "inactivity lock (besides the directory's own login times).",
        examples=["/var/lib/syncd/activity.csv"],
    )
    activity_sources: tuple[ActivitySourceConfig, ...] | None = Field(
        default=None,
        description="Where the mail server records logins, sends and receives "
        "(docs/mail-server.md, Activity sources). Each profile counts only what its article "
        "names (Hưng Yên: send/receive; without such a source its inactivity clocks are off). "
        "Progress is kept in <paths.state>/activity/ (0600).",
        examples=[
            [
                {"type": "mail-log", "path": "/var/log/mail.log"},
                {"type": "dovecot-dict", "path": "/var/lib/dovecot/lastlogin"},
                {"type": "dovecot-sql", "dsn": "sqlite:////var/lib/dovecot/last_login.db"},
            ]
        ],
    )
    exemptions_file: ConfigPath | None = Field(
        default=None,
        description="CSV employee_number,reason,from,until: people whose lifecycle clocks stop "
        "for a while (long leave, study abroad).",
        examples=["/etc/syncd/exemptions.csv"],
    )
    archive: ConfigPath | None = Field(
        default=None,
        description="Where the LDIF export of each purged account goes; default: "
        "<paths.state>/archive.",
        examples=["/var/lib/syncd/archive"],
    )
    purge_hook: StrictStr | None = Field(
        default=None,
        description="A command run after each purge, {uid} and {archive} filled in (e.g. to "
        "archive the mailbox itself).",
        examples=["/usr/local/sbin/archive-mailbox {uid} {archive}"],
    )
    warn_days_before: Positive | None = Field(
        default=None,
        description="Mail the person, and their organisation, this many days before an "
        "inactivity lock (once); needs smtp.sender. Off when absent.",
        examples=[14],
    )


@dataclass(frozen=True, config=SECTION)
class DaemonSettings:
    """`syncd run`: the long-running service (systemd unit config/systemd/syncd.service)."""

    inbox_interval: Seconds = Field(
        default=10.0,
        description="Seconds between looks at the inbox (with inotify the daemon also wakes "
        "as soon as a file is complete).",
    )
    inbox_readiness: Literal["auto", "inotify", "settle"] = Field(
        default="auto",
        description="How a file is known to be complete. inotify: closed after writing or "
        "renamed in, and not written since. settle: unchanged for settle_seconds (an inbox on "
        "NFS, CIFS or FUSE, where inotify misses other machines' writes). auto: inotify, "
        "unless the inbox is on such a filesystem or inotify cannot start.",
    )
    settle_seconds: Seconds = Field(
        default=30.0,
        description="Without inotify, a roster file unchanged this long is complete (copies "
        "over the network can be slow).",
    )
    reconcile_cron: Cron = Field(
        default="0 2 * * *",
        description="When the full reconcile runs: a crontab line (minute hour day month "
        "weekday), in local time (timezone).",
    )
    sweep_cron: Cron = Field(
        default="30 3 * * *",
        description="When the lifecycle sweep (locks, revokes, purges that are due) runs: "
        "crontab, in local time (timezone).",
    )
    lock_timeout: Seconds = Field(
        default=300.0,
        description="Seconds a run waits for another run (an operator's command) to finish.",
    )
    metrics: Annotated[StrictStr, AfterValidator(_loopback)] | None = Field(
        default=None,
        description="Prometheus metrics on this loopback host:port (never exposed further); off "
        "when absent.",
        examples=["127.0.0.1:9187"],
    )


@dataclass(frozen=True, config=SECTION)
class SmtpSettings:
    """The mail server syncd sends lock warnings through (lifecycle.warn_days_before)."""

    host: StrictStr = Field(default="127.0.0.1", description="SMTP server.")
    port: Positive = Field(default=25, description="SMTP port.")
    sender: StrictStr | None = Field(
        default=None,
        description="From: address of the warnings; required with lifecycle.warn_days_before.",
        examples=["hotromail@caobang.gov.vn"],
    )
    starttls: StrictBool = Field(default=False, description="true: STARTTLS before sending.")
    notify_org: StrictBool = Field(
        default=True, description="Also send each warning to the organisation's mailbox."
    )


@dataclass(frozen=True, config=SECTION)
class SafetySettings(Safety):
    """Per run. A stage (lock, revoke, purge) over its limit is held back while everything else
    applies; syncd reconcile --allow-mass-change releases it once (audited)."""

    max_lock_share: Share = Field(
        default=Safety.max_lock_share,
        description="Hold back the locks when they exceed this share (0-1) of managed accounts.",
    )
    max_lock_count: Positive = Field(
        default=Safety.max_lock_count, description="… or this many accounts."
    )
    max_revoke_share: Share = Field(
        default=Safety.max_revoke_share,
        description="Hold back the revokes when they exceed this share of managed accounts.",
    )
    max_revoke_count: Positive = Field(
        default=Safety.max_revoke_count, description="… or this many accounts."
    )
    max_purge_share: Share = Field(
        default=Safety.max_purge_share,
        description="Hold back the purges (permanent deletion) when they exceed this share.",
    )
    max_purge_count: Positive = Field(
        default=Safety.max_purge_count, description="… or this many accounts."
    )
    max_org_drop_share: Share = Field(
        default=Safety.max_org_drop_share,
        description="Refuse the whole run when one organisation's roster drops more than this "
        "share of its people: a cut-off file is likelier than a mass departure.",
    )


@dataclass(frozen=True, config=SECTION)
class TransferSettings:
    """People moving between organisations (điều chuyển)."""

    alias_days: Positive = Field(
        default=180,
        description="Days the old address keeps receiving mail after a transfer (an alias on "
        "the new mailbox).",
    )


@dataclass(frozen=True, config=SECTION)
class AdoptionConfig(AdoptionSettings):
    """Accounts made before syncd (no employee number) that match nobody on an organisation's
    authoritative roster."""

    unmatched: Unmatched = Field(
        default=AdoptionSettings.unmatched,
        description="decide: ask an operator (syncd decide ID --revoke | --ignore); revoke: "
        "revoke them like anyone dropped from the roster (within the safety limits).",
    )


@dataclass(frozen=True, config=SECTION)
class SlipSettings:
    """Credential slips (phiếu giao tài khoản): one printable page per person, one file per
    organisation per run, delivered to that organisation's folder and deleted after a while."""

    hr_area: ConfigPath | None = Field(
        default=None,
        description="Where each organisation's slips are delivered: <hr_area>/<org>/ (0750) "
        "holds phieu-<org>-<run>.html (0640), both of the organisation's group; absent: slips "
        "stay in paths.outbox (0600) for the operator to hand over.",
        examples=["/var/lib/syncd/hr"],
    )
    groups: dict[StrictStr, StrictStr] = Field(
        default_factory=dict,
        description="Organisation code → the group whose members (that organisation's HR) read "
        "its slips. An organisation not named here gets nothing delivered (its slips stay in "
        "paths.outbox for the operator): never a group other organisations share.",
        examples=[{"skhcn": "hr-skhcn", "syt": "hr-syt"}],
    )
    retention_days: Positive = Field(
        default=30,
        description="Days a slip is kept (delivered copies and paths.outbox run folders); the "
        "daemon's sweep deletes older ones, each deletion audited.",
    )
    paper: Literal["A4", "A5"] = Field(default="A5", description="The page size of a slip.")
    webmail: StrictStr | None = Field(
        default=None,
        description="The webmail address printed on each slip.",
        examples=["https://mail.caobang.gov.vn"],
    )
    imap: StrictStr | None = Field(
        default=None,
        description="The IMAP server printed on each slip (host:port).",
        examples=["mail.caobang.gov.vn:993"],
    )
    first_login_url: StrictStr | None = Field(
        default=None,
        description="Where a person changes the one-time password before the first mail login "
        "(openldap, openldap-ou, iredmail: the mail server refuses it until then; a self-service "
        "page that binds as the person: docs/mail-server.md, First login). Printed on each slip; "
        "absent: the slip sends the person to whoever handed it over.",
        examples=["https://matkhau.caobang.gov.vn"],
    )


@dataclass(frozen=True, config=SECTION)
class PublishSettings:
    """What the leadership and the public receive: the report on mailbox use each
    organisation owes (the profile's reports.usage article) and the published address lists
    (its reports.address_list article)."""

    folder: ConfigPath | None = Field(
        default=None,
        description="Where the daemon writes them: <folder>/baocao/ (reports, 0640) and "
        "<folder>/danhba/ (address lists, 0644: they are public). Absent: nothing is "
        "published on a schedule; syncd report and syncd addressbook still work on demand.",
        examples=["/var/lib/syncd/published"],
    )
    group: StrictStr | None = Field(
        default=None,
        description="The group that reads the reports (the leadership's office); absent: "
        "syncd's own group.",
        examples=["lanhdao"],
    )
    report_days_before: Positive = Field(
        default=10,
        description="Days before the profile's deadline (Cao Bằng 2025 Đ11.3: 30 November; "
        "Hưng Yên Đ11.8: 15 November) the daemon writes the yearly report; a half-yearly "
        "report (Cao Bằng 2011 Đ17) is written the day after its half-year ends.",
    )
    addressbook_cron: Cron = Field(
        default="30 3 * * 1",
        description="When the address lists are published (cron, in timezone); only where "
        "the profile asks for them.",
    )
    addressbook_formats: tuple[Literal["xlsx", "csv", "vcf", "html"], ...] = Field(
        default=("xlsx", "csv", "vcf", "html"),
        description="The formats of the published address lists.",
    )


def _keep_months(v: int) -> int:
    if v < 6:
        raise Bad("must be at least 6 (Tuyên Quang Đ9.1 keeps logs at least 6 months)")
    return v


@dataclass(frozen=True, config=SECTION)
class AuditSettings:
    """The audit log (paths.audit_log). syncd rotates it monthly (<log>.YYYY-MM) and deletes
    old months itself: give it no logrotate rule. The chain's key (audit.key, 0600), its head
    and the retention anchors live in paths.state; the log files are 0640 (group-readable)."""

    keep_months: Annotated[StrictInt, AfterValidator(_keep_months)] = Field(
        default=24,
        description="Months of audit records kept: a rotated month whose newest record is "
        "older is deleted, after an anchor is kept so syncd audit verify still checks the "
        "rest. At least 6 (Tuyên Quang Đ9.1).",
    )


def _retention_months(v: int) -> int:
    if v > 1200:  # found by an attack: 100000 was taken, and every sweep failed on the date
        raise Bad("at most 1200 (100 years); 0 keeps them for ever")
    return v if v == 0 else _keep_months(v)


@dataclass(frozen=True, config=SECTION)
class RetentionSettings:
    """What each run leaves besides the audit log — its text report and the operator's copy of
    HR's result (paths.state/reports), syncd's copies of the rosters it applied
    (paths.state/rosters), and the files the inbox filed with their results and reports
    (processed/, rejected/) — kept this long, then deleted by the daemon's nightly sweep, one
    audit record per sweep naming them. They name people: they are not kept for ever."""

    months: Annotated[StrictInt, AfterValidator(_retention_months)] = Field(
        default=24,
        description="Months kept, counted from when syncd wrote each (a filed roster: when it "
        "was filed). The latest accepted roster of each organisation is always kept (the "
        "nightly run re-applies it), and so is anything a run still in progress or a crashed "
        "run's recovery reads. 0: kept for ever; otherwise 6 (Tuyên Quang Đ9.1) to 1200.",
        examples=[24],
    )


# -- the whole file ----------------------------------------------------------------------------


class Config(BaseModel):
    """/etc/syncd/syncd.yaml — every key syncd knows; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: Annotated[StrictStr, AfterValidator(_profile_id)] = Field(
        description="The province's regulation (quy chế) syncd enforces: uid scheme, lock, "
        "revoke and purge clocks, password rule, the articles cited in the audit "
        f"(syncd rules shows it). One of: {', '.join(PROFILES)}.",
        examples=["caobang-2025"],
    )
    domain: Annotated[StrictStr, AfterValidator(_domain)] = Field(
        description="The mail domain: each address is <uid>@<domain>.",
        examples=["caobang.gov.vn"],
    )
    timezone: Annotated[StrictStr, AfterValidator(_timezone)] = Field(
        default=DEFAULT_TIMEZONE,
        description="The province's time zone (an IANA name; Việt Nam is Asia/Ho_Chi_Minh, "
        "UTC+7): the daemon's schedules and the times it shows people; the audit keeps UTC.",
    )
    directory: DirectoryConfig = Field(description=DirectoryConfig.__doc__)
    paths: Paths = Field(description=Paths.__doc__)
    orgs: ConfigPath = Field(
        description="The organisation catalogue (danh mục cơ quan, đơn vị), YAML or CSV: code "
        "(the uid suffix, e.g. skhcn), name, organisation mailbox (e.g. sokhcn), offices.",
        examples=["/etc/syncd/orgs.yaml"],
    )
    naming: NamingSettings = Field(
        default_factory=NamingSettings, description=NamingSettings.__doc__
    )
    roster: RosterSettings = Field(
        default_factory=RosterSettings, description=RosterSettings.__doc__
    )
    rules: dict[StrictStr, Any] | None = Field(
        default=None,
        description="Site overrides of single profile rules (e.g. a provincial decision that "
        "changes one clock); see syncd rules and config/profiles/<profile>.yaml. An override "
        "without article keeps the profile's, marked (site override).",
        examples=[
            {
                "lock_inactive": {"after": "120d"},
                "purge_locked": {
                    "after": "5y",
                    "article": "caobang-2025 Đ8 (decision of the provincial DOST)",
                },
            }
        ],
    )
    lifecycle: LifecycleSettings = Field(
        default_factory=LifecycleSettings, description=LifecycleSettings.__doc__
    )
    daemon: DaemonSettings = Field(
        default_factory=DaemonSettings, description=DaemonSettings.__doc__
    )
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description=SmtpSettings.__doc__)
    safety: SafetySettings = Field(
        default_factory=SafetySettings, description=SafetySettings.__doc__
    )
    transfer: TransferSettings = Field(
        default_factory=TransferSettings, description=TransferSettings.__doc__
    )
    adoption: AdoptionConfig = Field(
        default_factory=AdoptionConfig, description=AdoptionConfig.__doc__
    )
    audit: AuditSettings = Field(default_factory=AuditSettings, description=AuditSettings.__doc__)
    slips: SlipSettings = Field(default_factory=SlipSettings, description=SlipSettings.__doc__)
    publish: PublishSettings = Field(
        default_factory=PublishSettings, description=PublishSettings.__doc__
    )
    retention: RetentionSettings = Field(
        default_factory=RetentionSettings, description=RetentionSettings.__doc__
    )

    _source: Path = PrivateAttr(default=Path("syncd.yaml"))
    _text: str = PrivateAttr(default="")  # the text it was parsed from (``parse_config``)
    _scheme: Scheme | None = PrivateAttr(default=None)
    _profile: Profile | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _across(cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
        """The checks that involve several keys, on the raw data, so that they are reported
        together with every other problem (``context["issues"]`` collects them)."""
        context = info.context or {}
        found = list(_cross_field(data)) if isinstance(data, Mapping) else []
        sink = context.get("issues")
        if sink is not None:
            sink.extend(found)
        result = handler(data)
        if not isinstance(result, Config) or (found and sink is not None):
            return result  # parse_config refuses it with the issues collected
        if found:
            raise ValueError("; ".join(f"{_key_path(loc)}: {m}" for loc, m, _ in found))
        result._source = context.get("source", result._source)
        base = PROFILES[result.profile]
        result._profile = with_overrides(base, result.rules, "rules") if result.rules else base
        schemes = _schemes(result.naming.template)
        result._scheme = schemes[result.naming.scheme or base.scheme]
        return result

    @property
    def source(self) -> Path:
        return self._source

    @property
    def text(self) -> str:
        """The YAML this configuration was parsed from: what a long-running daemon plans with,
        whatever the file says now (``connectors/quiet.py`` keys on it)."""
        return self._text

    @property
    def scheme(self) -> Scheme:
        assert self._scheme is not None
        return self._scheme

    @property
    def effective(self) -> Profile:
        """The profile with the site's rule overrides."""
        return self._profile or PROFILES[self.profile]

    @property
    def alias_days(self) -> int:
        return self.transfer.alias_days

    @property
    def archive_dir(self) -> Path:
        return self.lifecycle.archive or self.paths.state / "archive"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


def _schemes(template: Mapping[str, Any] | None) -> dict[str, Scheme]:
    if template is None:
        return dict(BUILTIN)
    tpl = scheme_from_mapping(template, source="naming.template")
    return {**BUILTIN, tpl.id: tpl}


Issue = tuple[tuple[str | int, ...], str, Sequence[tuple[str | int, ...]]]


def _cross_field(data: Mapping[str, Any]) -> Iterator[Issue]:
    """(key path, message, where else to look for the line) for each problem across keys.

    Tolerant of any input: a check whose keys are missing or mistyped is left to the schema.
    """

    def section(name: str) -> Mapping[str, Any]:
        value = data.get(name)
        return value if isinstance(value, Mapping) else {}

    d = section("directory")
    if isinstance(data.get("directory"), Mapping):
        given = [k for k in SECRET_SOURCES if d.get(k) is not None]
        if len(given) != 1:
            yield (
                ("directory",),
                f"give exactly one of {', '.join(SECRET_SOURCES)} (found {len(given)}); "
                "passwords never go in this file",
                [("directory", given[-1])] if given else [],
            )
        if d.get("bind_credential_file") is not None and d.get("bind_credential") is None:
            yield (
                ("directory", "bind_credential_file"),
                "only with bind_credential (it is where that credential's file is)",
                [],
            )
    zimbra = d.get("zimbra")
    routing = isinstance(zimbra, Mapping) and any(zimbra.get(k) for k in ("mail_host", "cos"))
    if routing and d.get("profile", "openldap") != "zimbra":
        yield (("directory", "zimbra"), "only the zimbra profile uses it; remove it", [])
    if d.get("profile") == "zimbra" and not (
        isinstance(zimbra, Mapping) and zimbra.get("mail_host")
    ):
        # found by an attack: accounts made without a route got slips, yet Zimbra neither
        # delivered to them nor let them log in, and nothing but the doctor said so
        yield (
            ("directory", "zimbra", "mail_host"),
            "required with the zimbra profile: the mailbox server new accounts live on "
            "(zimbraMailHost, and zimbraMailTransport lmtp:<mail_host>:7025); without it Zimbra "
            "neither delivers to them nor lets them log in",
            [("directory", "profile")],
        )
    name = d.get("profile", "openldap")
    writes_quota = (
        isinstance(name, str)
        and name in DIRECTORY_PROFILES
        and getattr(directory_profile(name), "QUOTA_ATTRIBUTE", None) is not None
    )
    for key in ("quota_mb", "org_quota_mb"):
        real = isinstance(name, str) and name in DIRECTORY_PROFILES
        if d.get(key) is not None and real and not writes_quota:
            yield (
                ("directory", key),
                f"the {name} profile writes no quota (the mail server's own setting applies: "
                "docs/mail-server.md); remove it",
                [],
            )
    url = d.get("url")
    if d.get("start_tls") is True and isinstance(url, str) and url.startswith("ldaps://"):
        yield (("directory", "start_tls"), "not with ldaps:// (it is TLS already)", [])

    profile = PROFILES.get(data["profile"]) if isinstance(data.get("profile"), str) else None
    naming = section("naming")
    scheme = naming.get("scheme")
    wanted = scheme if isinstance(scheme, str) else profile.scheme if profile else None
    template = naming.get("template")
    known = list(BUILTIN)
    if isinstance(template, Mapping) and isinstance(template.get("id"), str):
        known.append(template["id"])  # a template's own problems are reported at its key
    if wanted is not None and wanted not in known:
        yield (("naming", "scheme"), f"{wanted!r} is not one of {', '.join(known)}", [])

    rules = data.get("rules")
    if profile is not None and isinstance(rules, Mapping):
        for key, value in rules.items():
            try:
                with_overrides(profile, {key: value}, "rules")
            except SyncdError as exc:
                yield (("rules", str(key)), str(exc).removeprefix(f"rules: rules.{key}: "), [])

    yield from _quota_minimums(d, profile)

    warn = section("lifecycle").get("warn_days_before")
    if warn is not None and warn is not False and not section("smtp").get("sender"):
        yield (
            ("smtp", "sender"),
            "required when lifecycle.warn_days_before is set",
            [("smtp",), ("lifecycle", "warn_days_before")],
        )


def _quota_minimums(d: Mapping[str, Any], profile: Profile | None) -> Iterator[Issue]:
    """Where syncd writes each new mailbox's quota (the directory profile names a quota
    attribute), a regulation's least quota (Hưng Yên Đ8.1b: 2048 MiB personal, 10240 MiB
    organisation) must be configured and met: left unset, the mail server's default applies
    (iRedMail's is 1 GB), and nothing would say so until a mailbox fills up."""
    rule = profile.mailbox.quota if profile else None
    name = d.get("profile", "openldap")
    if rule is None or not isinstance(name, str) or name not in DIRECTORY_PROFILES:
        return
    if getattr(directory_profile(name), "QUOTA_ATTRIBUTE", None) is None:
        return  # the mail server's own quota applies: `syncd rules` says what it must be
    for key, least, kind in (
        ("quota_mb", rule.personal_min_mb, "personal"),
        ("org_quota_mb", rule.organisation_min_mb, "organisation"),
    ):
        given = d.get(key)
        if given is None:
            yield (
                ("directory", key),
                f"{rule.article} asks at least {least} MiB per {kind} mailbox: set it "
                "(unset, the mail server's default quota would apply)",
                [],
            )
        elif isinstance(given, int) and not isinstance(given, bool) and given < least:
            yield (
                ("directory", key),
                f"{given} MiB is below the {least} MiB per {kind} mailbox {rule.article} asks",
                [],
            )


# -- reading a file ----------------------------------------------------------------------------

Loc = tuple[str | int, ...]


class _Shared(Exception):
    """A YAML alias (``*name``): refused, a few of them nest into gigabytes."""


def _lines(
    node: yaml.Node,
    loc: Loc,
    out: dict[Loc, int],
    dups: list[tuple[Loc, int]],
    seen: set[int] | None = None,
) -> None:
    """Map each key path to the line of its key (sequence items: of the item)."""
    seen = set() if seen is None else seen
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        if id(node) in seen:
            raise _Shared(node.start_mark.line + 1)
        seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for knode, vnode in node.value:
            key = knode.value if isinstance(knode, yaml.ScalarNode) else None
            if key is None:
                continue
            here = (*loc, key)
            if here in out:
                dups.append((here, knode.start_mark.line + 1))
            out[here] = knode.start_mark.line + 1
            _lines(vnode, here, out, dups, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[(*loc, i)] = item.start_mark.line + 1
            _lines(item, (*loc, i), out, dups, seen)


def _fields(cls: Any) -> dict[str, FieldInfo]:
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return dict(cls.model_fields)
    return dict(getattr(cls, "__pydantic_fields__", {}))


def _section_type(annotation: Any) -> Any:
    """The model or dataclass behind a field's annotation, or None for a plain value."""
    if _fields(annotation):
        return annotation
    if get_origin(annotation) is Annotated:
        return _section_type(get_args(annotation)[0])
    return None


def _type_at(loc: Loc) -> Any:
    cls: Any = Config
    for part in loc:
        info = _fields(cls).get(str(part))
        cls = _section_type(info.annotation) if info is not None else None
        if cls is None:
            return None
    return cls


def _drop_nulls(data: Any, cls: Any) -> Any:
    """``key:`` with nothing after it means the default (an empty section: all defaults)."""
    fields = _fields(cls)
    if not isinstance(data, dict) or not fields:
        return data
    out = {}
    for key, value in data.items():
        if value is None:
            continue
        info = fields.get(key) if isinstance(key, str) else None
        sub = _section_type(info.annotation) if info is not None else None
        out[key] = _drop_nulls(value, sub) if sub is not None else value
    return out


_KINDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "int_parsing": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dataclass_type": "a mapping",
    "dataclass_args_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
    "path_type": "a path",
}


def _message(error: Mapping[str, Any]) -> str:
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    loc = tuple(error["loc"])
    if kind == "missing":
        return "required"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        allowed = list(_fields(_type_at(loc[:-1])))
        return f"unknown key (allowed: {', '.join(allowed)})"
    if kind in _KINDS:
        return f"must be {_KINDS[kind]}, not {value!r}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{value!r} is not one of {', '.join(choices)}"
    if kind == "greater_than":
        return f"{value!r} must be greater than {ctx['gt']}"
    if kind == "value_error" and isinstance(ctx.get("error"), Bad):
        return f"{value!r} {ctx['error']}"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    return str(error["msg"])


def _key_path(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "(top)"


def _line(lines: Mapping[Loc, int], candidates: Sequence[Loc]) -> int:
    for loc in candidates:
        for n in range(len(loc), 0, -1):
            if loc[:n] in lines:
                return lines[loc[:n]]
    return lines.get((), 1)


MAX_CONFIG_CHARS = 1_000_000


def parse_config(text: str, source: Path) -> Config:
    """Parse and validate ``text`` (the content of ``source``); raise :class:`ConfigError`
    listing every problem, each as ``file:line: key.path: message``, in file order."""
    src = str(source)
    if len(text) > MAX_CONFIG_CHARS:
        raise ConfigError([f"{src}:1: (top): {len(text):,} characters; a configuration is small"])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark else "?"
        raise ConfigError([f"{src}:{line}: not valid YAML: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{src}:1: (top): nested too deep to be a configuration"]) from None
    if node is None:
        raise ConfigError([f"{src}:1: (top): the file is empty"])
    lines: dict[Loc, int] = {(): node.start_mark.line + 1}
    duplicates: list[tuple[Loc, int]] = []
    try:
        _lines(node, (), lines, duplicates)
    except _Shared as shared:
        raise ConfigError(
            [
                f"{src}:{shared.args[0]}: YAML anchors and aliases (&name, *name) are not allowed "
                "in syncd.yaml: write each value out"
            ]
        ) from None
    except RecursionError:
        raise ConfigError([f"{src}:1: (top): nested too deep to be a configuration"]) from None
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ConfigError([f"{src}:{lines[()]}: (top): must be a mapping"])

    found: list[tuple[int, str]] = [
        (line, f"{src}:{line}: {_key_path(loc)}: given twice (the last one would win)")
        for loc, line in duplicates
    ]
    issues: list[Issue] = []
    context = {"source": source, "base": source.parent, "issues": issues}
    try:
        config = Config.model_validate(_drop_nulls(data, Config), context=context)
    except ValidationError as exc:
        config = None
        for error in exc.errors():
            at = tuple(error["loc"])
            n = _line(lines, [at])
            found.append((n, f"{src}:{n}: {_key_path(at)}: {_message(error)}"))
    for at, message, elsewhere in issues:
        n = _line(lines, [at, *elsewhere] if at not in lines else [at])
        found.append((n, f"{src}:{n}: {_key_path(at)}: {message}"))
    if found or config is None:
        raise ConfigError([text for _, text in sorted(found, key=lambda f: f[0])])
    config._text = text
    return config


# -- the example -------------------------------------------------------------------------------

_HEADER = """\
# {doc}
# Check a configuration with:  syncd -c /etc/syncd/syncd.yaml config validate
#
# GENERATED from connectors/config.py — edit the descriptions there, then run
#   {command}
# A value shown is the default unless the comment says "Required"; a commented line is an
# example of an optional setting.
"""


def _dump(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_dump(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _dump(v) for k, v in value.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _yaml_lines(key: str, value: Any) -> list[str]:
    """``key: value`` in block style; a list of scalars, or the innermost mappings, in flow."""
    nested = isinstance(value, list | tuple) or (
        isinstance(value, Mapping) and any(isinstance(v, Mapping) for v in value.values())
    )
    text = yaml.safe_dump(
        {key: _dump(value)},
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=None if nested else False,
        width=96,
    )
    return text.rstrip("\n").split("\n")


def _comment(text: str, indent: str, width: int = 98) -> list[str]:
    return textwrap.wrap(
        " ".join(text.split()),
        width=width,
        initial_indent=f"{indent}# ",
        subsequent_indent=f"{indent}# ",
        break_on_hyphens=False,
    )


def _render(cls: Any, indent: str, out: list[str]) -> None:
    for name, info in _fields(cls).items():
        sub = _section_type(info.annotation)
        description = info.description or ""
        if sub is not None:
            out.append("")
            out += _comment(description, indent)
            out.append(f"{indent}{name}:")
            _render(sub, indent + "  ", out)
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        example = info.examples[0] if info.examples else None
        if info.is_required():
            value, commented, note = example, False, " Required."
        elif extra.get("x-in-example"):
            value, commented, note = example, False, ""
        else:
            default = info.get_default(call_default_factory=True)
            if default not in (None, {}) or example is None:
                value, commented, note = default, False, ""
            else:
                value, commented, note = example, True, ""
        if not indent:
            out.append("")
        out += _comment(description + note, indent)
        prefix = f"{indent}# " if commented else indent
        out += [prefix + line for line in _yaml_lines(name, value)]


def render_example() -> str:
    """The text of config/syncd.example.yaml."""
    doc = (Config.__doc__ or "").strip()
    out = [_HEADER.format(doc=doc, command=EXAMPLE_COMMAND).rstrip("\n")]
    _render(Config, "", out)
    return "\n".join(out) + "\n"


def example_config() -> Config:
    """The generated example, validated (it must always be)."""
    return parse_config(render_example(), EXAMPLE_PATH)


def main(argv: Sequence[str] | None = None) -> int:
    write = sys.stdout.write
    parser = argparse.ArgumentParser(
        prog="python -m connectors.config", description="The syncd.yaml schema."
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--example", action="store_true", help="print config/syncd.example.yaml")
    what.add_argument("--check", type=Path, metavar="FILE", help="validate a syncd.yaml")
    args = parser.parse_args(argv)
    if args.example:
        write(render_example())
        return 0
    try:
        parse_config(args.check.read_text(encoding="utf-8"), args.check)
    except (ConfigError, OSError) as exc:
        write(f"{exc}\n")
        return 2
    write(f"{args.check}: ok\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
