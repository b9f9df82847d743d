"""``syncd.yaml`` → typed, validated configuration.

The file is checked against a schema: unknown keys are errors, and *all* errors are reported at
once, each as ``file:line: key.path: message``, before cross-field checks run. The text is given
to :func:`parse_config`; reading files and secrets is the connectors' business.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from syncd.errors import SyncdError
from syncd.naming.schemes import BUILTIN, Scheme, scheme_from_mapping
from syncd.profiles import PROFILES, Profile, ProfileError, with_overrides


class ConfigError(SyncdError):
    """One or more configuration problems; ``issues`` lists every one."""

    def __init__(self, issues: list[str]) -> None:
        super().__init__("\n".join(issues))
        self.issues = issues


@dataclass(frozen=True)
class Field:
    """Schema of one key: a type, or nested ``children``, or free-form ``values``."""

    kind: type | tuple[type, ...] | None = str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] | None = None
    children: Mapping[str, Field] | None = None
    values: Field | None = None  # a mapping with free keys, each value of this schema
    check: Callable[[Any], str | None] | None = None


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _delays(v: Any) -> str | None:
    ok = all(isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x <= 60 for x in v)
    return None if ok and len(v) <= 10 else "must be a list of at most 10 seconds (0-60)"


def _share(v: Any) -> str | None:
    return None if 0 <= v <= 1 else "must be a share between 0 and 1"


def _domain(v: Any) -> str | None:
    ok = re.fullmatch(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}", v)
    return None if ok else "is not a lowercase mail domain"


SCHEMA: dict[str, Field] = {
    "profile": Field(required=True, choices=tuple(PROFILES)),
    "domain": Field(required=True, check=_domain),
    "directory": Field(
        kind=None,
        required=True,
        children={
            "url": Field(required=True),
            "bind_dn": Field(required=True),
            "base_dn": Field(required=True),
            "layout": Field(default="flat", choices=("flat", "per-org")),
            "profile": Field(default="openldap", choices=("openldap",)),
            "bind_password_file": Field(),
            "bind_password_env": Field(),
            "bind_credential": Field(),
            "page_size": Field(kind=int, default=500, check=_positive),
            "timeout": Field(kind=(int, float), default=10, check=_positive),
            "ca_file": Field(),
            "allow_insecure": Field(kind=bool, default=False),
            "start_tls": Field(kind=bool, default=False),
            "retry_delays": Field(kind=list, default=[0.5, 2.0, 5.0], check=_delays),
            "delivery_attribute": Field(default="syncdDelivery"),
        },
    ),
    "paths": Field(
        kind=None,
        required=True,
        children={
            "inbox": Field(required=True),
            "state": Field(required=True),
            "outbox": Field(required=True),
            "audit_log": Field(required=True),
        },
    ),
    "orgs": Field(required=True),
    "naming": Field(
        kind=None,
        children={
            "scheme": Field(),
            "template": Field(kind=dict),
        },
    ),
    "roster": Field(
        kind=None,
        children={
            "columns": Field(kind=None, values=Field()),
            "accept_valid_rows": Field(kind=bool, default=False),
            "sheet": Field(),
        },
    ),
    "rules": Field(kind=dict),
    "lifecycle": Field(
        kind=None,
        children={
            "activity_file": Field(),
            "exemptions_file": Field(),
            "archive": Field(),
            "purge_hook": Field(),
            "warn_days_before": Field(kind=int, check=_positive),
        },
    ),
    "daemon": Field(
        kind=None,
        children={
            "inbox_interval": Field(kind=(int, float), default=10, check=_positive),
            "settle_seconds": Field(kind=(int, float), default=30, check=_positive),
            "reconcile_cron": Field(default="0 2 * * *"),
            "sweep_cron": Field(default="30 3 * * *"),
            "lock_timeout": Field(kind=(int, float), default=300, check=_positive),
            "metrics": Field(),  # "127.0.0.1:9187"; off when absent
        },
    ),
    "smtp": Field(
        kind=None,
        children={
            "host": Field(default="127.0.0.1"),
            "port": Field(kind=int, default=25, check=_positive),
            "sender": Field(),
            "starttls": Field(kind=bool, default=False),
            "notify_org": Field(kind=bool, default=True),
        },
    ),
    "safety": Field(
        kind=None,
        children={
            "max_lock_share": Field(kind=(int, float), default=0.10, check=_share),
            "max_lock_count": Field(kind=int, default=50, check=_positive),
            "max_revoke_share": Field(kind=(int, float), default=0.10, check=_share),
            "max_revoke_count": Field(kind=int, default=25, check=_positive),
            "max_purge_share": Field(kind=(int, float), default=0.05, check=_share),
            "max_purge_count": Field(kind=int, default=10, check=_positive),
            "max_org_drop_share": Field(kind=(int, float), default=0.5, check=_share),
        },
    ),
    "transfer": Field(
        kind=None,
        children={"alias_days": Field(kind=int, default=180, check=_positive)},
    ),
    "adoption": Field(
        kind=None,
        children={"unmatched": Field(default="decide", choices=("decide", "revoke"))},
    ),
}


@dataclass(frozen=True)
class DirectoryConfig:
    url: str
    bind_dn: str
    base_dn: str
    layout: str = "flat"
    profile: str = "openldap"
    bind_password_file: Path | None = None
    bind_password_env: str | None = None
    bind_credential: str | None = None
    page_size: int = 500
    timeout: float = 10
    ca_file: Path | None = None
    allow_insecure: bool = False
    start_tls: bool = False  # ldap:// upgraded with StartTLS (certificate verified)
    retry_delays: tuple[float, ...] = (0.5, 2.0, 5.0)  # per action, on transient errors
    delivery_attribute: str = "syncdDelivery"  # TRUE/FALSE, read by the mail server's filter


@dataclass(frozen=True)
class Paths:
    inbox: Path
    state: Path
    outbox: Path
    audit_log: Path


@dataclass(frozen=True)
class Safety:
    """Per-run limits for each stage, as a count and as a share of managed accounts."""

    max_lock_share: float = 0.10
    max_lock_count: int = 50
    max_revoke_share: float = 0.10
    max_revoke_count: int = 25
    max_purge_share: float = 0.05
    max_purge_count: int = 10
    max_org_drop_share: float = 0.5  # a roster dropping more of an org's people is refused


@dataclass(frozen=True)
class AdoptionSettings:
    """Accounts made before syncd, without an employee number, that match nobody on an
    authoritative roster: ``decide`` asks an operator (``syncd decide ID --revoke|--ignore``),
    ``revoke`` revokes them like any account dropped from the roster (guarded)."""

    unmatched: str = "decide"


@dataclass(frozen=True)
class LifecycleSettings:
    activity_file: Path | None = None  # CSV address,last_activity from the mail server
    exemptions_file: Path | None = None  # CSV employee_number,reason,from,until
    archive: Path | None = None  # LDIF archives of purged accounts (default: state/archive)
    purge_hook: str | None = None  # command run after a purge: {uid} {archive}
    warn_days_before: int | None = None  # mail the person (and the org) before a lock


@dataclass(frozen=True)
class DaemonSettings:
    inbox_interval: float = 10  # seconds between looks at the inbox
    settle_seconds: float = 30  # a file unchanged this long is complete
    reconcile_cron: str = "0 2 * * *"  # the full reconcile (nightly)
    sweep_cron: str = "30 3 * * *"  # the lifecycle sweep (daily)
    lock_timeout: float = 300
    metrics: str | None = None  # loopback host:port for Prometheus; None = off


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 25
    sender: str | None = None
    starttls: bool = False
    notify_org: bool = True


@dataclass(frozen=True)
class RosterSettings:
    columns: dict[str, str] = field(default_factory=dict)
    accept_valid_rows: bool = False
    sheet: str | None = None


@dataclass(frozen=True)
class Config:
    source: Path
    profile: str
    domain: str
    directory: DirectoryConfig
    paths: Paths
    orgs: Path
    scheme: Scheme
    roster: RosterSettings = field(default_factory=RosterSettings)
    safety: Safety = field(default_factory=Safety)
    alias_days: int = 180
    adoption: AdoptionSettings = field(default_factory=AdoptionSettings)
    rules: Profile | None = None  # the profile with the site's overrides
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)

    @property
    def effective(self) -> Profile:
        return self.rules or PROFILES[self.profile]

    @property
    def archive_dir(self) -> Path:
        return self.lifecycle.archive or self.paths.state / "archive"


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "a mapping",
    list: "a list",
}


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def _empty(at: yaml.Node) -> yaml.MappingNode:
    """An empty mapping standing where an absent or empty section is, for its line number."""
    return yaml.MappingNode("tag:yaml.org,2002:map", [], at.start_mark)


def _validate(
    node: yaml.Node,
    value: Any,
    spec: Mapping[str, Field],
    path: str,
    src: str,
    out: list[str],
    line: int | None = None,
) -> dict[str, Any]:
    """Check one mapping against ``spec``; append every issue to ``out``; return typed values.

    ``line`` is where the section's key stands, which is where a missing key is reported.
    """
    line = line or node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode) or not isinstance(value, dict):
        out.append(f"{src}:{line}: {path or '(top)'}: must be a mapping")
        return {}
    keys = {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}
    result: dict[str, Any] = {}
    for key, (knode, vnode) in keys.items():
        where = f"{path}.{key}" if path else key
        kline = knode.start_mark.line + 1
        if key not in spec:
            out.append(f"{src}:{kline}: {where}: unknown key (allowed: {', '.join(spec)})")
            continue
        f, v = spec[key], value.get(key)
        if f.children is not None:
            child = vnode if v is not None else _empty(vnode)
            result[key] = _validate(
                child, v if v is not None else {}, f.children, where, src, out, kline
            )
            continue
        if f.values is not None:
            if not isinstance(v, dict):
                out.append(f"{src}:{kline}: {where}: must be a mapping")
                continue
            bad = [k for k, x in v.items() if not isinstance(x, str)]
            for k in bad:
                out.append(f"{src}:{kline}: {where}.{k}: must be a string")
            result[key] = {str(k): x for k, x in v.items() if isinstance(x, str)}
            continue
        vline = vnode.start_mark.line + 1
        if v is None:
            if f.required:
                out.append(f"{src}:{vline}: {where}: required")
            else:
                result[key] = f.default
            continue
        assert f.kind is not None
        if (
            isinstance(v, bool)
            and f.kind is not bool
            and bool not in (f.kind if isinstance(f.kind, tuple) else (f.kind,))
        ):
            out.append(f"{src}:{vline}: {where}: must be {_type_name(f.kind)}, not {v!r}")
            continue
        if not isinstance(v, f.kind):
            out.append(f"{src}:{vline}: {where}: must be {_type_name(f.kind)}, not {v!r}")
            continue
        if f.choices is not None and v not in f.choices:
            out.append(f"{src}:{vline}: {where}: {v!r} is not one of {', '.join(f.choices)}")
            continue
        if f.check is not None and (problem := f.check(v)):
            out.append(f"{src}:{vline}: {where}: {v!r} {problem}")
            continue
        result[key] = v
    for key, f in spec.items():
        if key in keys:
            continue
        where = f"{path}.{key}" if path else key
        if f.required:
            out.append(f"{src}:{line}: {where}: required")
        elif f.children is not None:
            result[key] = _validate(_empty(node), {}, f.children, where, src, out)
        else:
            result[key] = f.default
    return result


def parse_config(text: str, source: Path) -> Config:
    """Parse and validate ``text`` (the content of ``source``); raise :class:`ConfigError`."""
    src = str(source)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark else "?"
        raise ConfigError([f"{src}:{line}: not valid YAML: {exc}"]) from None
    if node is None:
        raise ConfigError([f"{src}:1: (top): the file is empty"])
    issues: list[str] = []
    raw = _validate(node, data, SCHEMA, "", src, issues)
    if issues:
        raise ConfigError(issues)
    return _build(raw, source, node)


def _build(raw: dict[str, Any], source: Path, node: yaml.Node) -> Config:
    """Cross-field checks and typing, after the schema passed."""
    src = str(source)
    base = source.parent
    issues: list[str] = []
    d = raw["directory"]
    secrets = [k for k in ("bind_password_file", "bind_password_env", "bind_credential") if d[k]]
    if len(secrets) != 1:
        issues.append(
            f"{src}: directory: give exactly one of bind_password_file, bind_password_env, "
            f"bind_credential (found {len(secrets)}); passwords never go in this file"
        )
    url = d["url"]
    if not re.match(r"^ldaps?://", url):
        issues.append(f"{src}: directory.url: {url!r} must start with ldap:// or ldaps://")
    if d["start_tls"] and url.startswith("ldaps://"):
        issues.append(f"{src}: directory.start_tls: not with ldaps:// (it is TLS already)")

    scheme_id = raw["naming"].get("scheme") or PROFILES[raw["profile"]].scheme
    template = raw["naming"].get("template")
    extra: dict[str, Scheme] = {}
    if template is not None:
        try:
            tpl = scheme_from_mapping(template, source=f"{src}: naming.template")
            extra[tpl.id] = tpl
        except SyncdError as exc:
            issues.append(str(exc))
    schemes = {**BUILTIN, **extra}
    effective = PROFILES[raw["profile"]]
    if raw.get("rules"):
        try:
            effective = with_overrides(effective, raw["rules"], src)
        except ProfileError as exc:
            issues.append(str(exc))
    if scheme_id not in schemes:
        issues.append(f"{src}: naming.scheme: {scheme_id!r} is not one of {', '.join(schemes)}")
    if raw["lifecycle"].get("warn_days_before") and not raw["smtp"].get("sender"):
        issues.append(f"{src}: smtp.sender: required when lifecycle.warn_days_before is set")
    if issues:
        raise ConfigError(issues)

    def path(value: str) -> Path:
        return (base / value).resolve() if not Path(value).is_absolute() else Path(value)

    p = raw["paths"]
    lc = raw["lifecycle"]
    return Config(
        source=source,
        profile=raw["profile"],
        domain=raw["domain"],
        directory=DirectoryConfig(
            url=url,
            bind_dn=d["bind_dn"],
            base_dn=d["base_dn"],
            layout=d["layout"],
            profile=d["profile"],
            bind_password_file=path(d["bind_password_file"]) if d["bind_password_file"] else None,
            bind_password_env=d["bind_password_env"],
            bind_credential=d["bind_credential"],
            page_size=d["page_size"],
            timeout=float(d["timeout"]),
            ca_file=path(d["ca_file"]) if d["ca_file"] else None,
            allow_insecure=d["allow_insecure"],
            start_tls=d["start_tls"],
            retry_delays=tuple(float(x) for x in d["retry_delays"]),
            delivery_attribute=d["delivery_attribute"],
        ),
        paths=Paths(
            inbox=path(p["inbox"]),
            state=path(p["state"]),
            outbox=path(p["outbox"]),
            audit_log=path(p["audit_log"]),
        ),
        orgs=path(raw["orgs"]),
        scheme=schemes[scheme_id],
        roster=RosterSettings(
            columns=raw["roster"].get("columns") or {},
            accept_valid_rows=raw["roster"]["accept_valid_rows"],
            sheet=raw["roster"]["sheet"],
        ),
        safety=Safety(**{k: v for k, v in raw["safety"].items()}),
        alias_days=raw["transfer"]["alias_days"],
        adoption=AdoptionSettings(**raw["adoption"]),
        rules=effective,
        lifecycle=LifecycleSettings(
            activity_file=path(lc["activity_file"]) if lc["activity_file"] else None,
            exemptions_file=path(lc["exemptions_file"]) if lc["exemptions_file"] else None,
            archive=path(lc["archive"]) if lc["archive"] else None,
            purge_hook=lc["purge_hook"],
            warn_days_before=lc["warn_days_before"],
        ),
        smtp=SmtpSettings(**raw["smtp"]),
        daemon=DaemonSettings(**raw["daemon"]),
    )
