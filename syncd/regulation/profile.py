"""A province's regulation as syncd enforces it, and the engine that reads one.

Each province is one file of data beside this module, ``syncd/regulation/<id>.yaml`` (also
visible as ``config/profiles/``): its uid schemes, password rule, articles, lifecycle clocks,
what counts as activity and the articles of manual locks. This module turns such a mapping into
a typed :class:`Profile`; reading the files is a connector's job (``connectors.regulations``),
so the core never touches a file. Every rule carries the article it enforces and where its
value came from (the profile, or a site override in ``syncd.yaml``), so ``syncd rules``, audit
records and reports can cite it.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from syncd.errors import SchemeError, SyncdError
from syncd.naming.schemes import Scheme, scheme_from_mapping

SPECIALS_2025 = "!@#%$*&"
LOCK_REASONS = ("compromised", "spam", "malware", "misuse")
CLOCKS = (
    "lock_inactive",
    "lock_default_password",
    "revoke_locked",
    "revoke_inactive",
    "purge_locked",
)


class ProfileError(SyncdError):
    pass


@dataclass(frozen=True)
class Duration:
    """A regulation's period: days, calendar months or years ("3 months" is not 90 days)."""

    amount: int
    unit: str  # "d", "m" or "y"

    @classmethod
    def parse(cls, text: str) -> Duration:
        m = re.fullmatch(r"\s*(\d+)\s*([dmy])\s*", str(text))
        if not m:
            raise ProfileError(f"{text!r} is not a duration like 90d, 3m or 3y")
        amount, unit = int(m.group(1)), m.group(2)
        longest = {"d": 36_500, "m": 1_200, "y": 100}[unit]  # a clock is off with after: null
        if not 1 <= amount <= longest:
            raise ProfileError(
                f"{text!r}: between 1{unit} and {longest}{unit} (to turn a rule off: after: null)"
            )
        return cls(amount, unit)

    def after(self, start: datetime) -> datetime:
        """``start`` plus this period (month ends clamp: 31 Jan + 1m = 28/29 Feb)."""
        if self.unit == "d":
            return start + timedelta(days=self.amount)
        months = self.amount * (12 if self.unit == "y" else 1)
        y, mo = divmod(start.month - 1 + months, 12)
        year, month = start.year + y, mo + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


@dataclass(frozen=True)
class Clock:
    """A lifecycle clock: off (``after`` None) or a period, with its article and source."""

    after: Duration | None
    article: str
    source: str


@dataclass(frozen=True)
class Flag:
    value: bool
    article: str
    source: str


ACTIVITY_KINDS = ("login", "send", "receive")


@dataclass(frozen=True)
class Activity:
    """What counts as a sign of life for the inactivity clocks, per regulation.

    ``login`` (a bind, read from the directory), ``send`` and ``receive`` (from the mail
    server's records, imported): Cao Bằng 2025 counts logins only (Đ8.2a), Hưng Yên send and
    receive (Đ7.2a), Tuyên Quang any of the three (Đ8.2a).
    """

    sources: tuple[str, ...]
    article: str
    source: str


def _no_flag() -> Flag:
    return Flag(False, "", "")


def _login_only() -> Activity:
    return Activity(("login",), "", "")


@dataclass(frozen=True)
class Lifecycle:
    lock_inactive: Clock
    lock_default_password: Clock
    revoke_locked: Clock
    revoke_inactive: Clock
    purge_locked: Clock
    locked_receives_mail: Flag
    manual_lock: Mapping[str, str] = field(default_factory=dict)
    activity: Activity = field(default_factory=_login_only)
    # a cancelled account is archived and deleted at once (tuyenquang-2025 Đ7.2)
    delete_on_leave: Flag = field(default_factory=_no_flag)


@dataclass(frozen=True)
class PasswordRule:
    """What a password must look like (DIGEST §2)."""

    article: str
    min_length: int = 8
    upper: bool = True
    lower: bool = True
    digit: bool = True
    special: str = SPECIALS_2025  # allowed and required special characters; "" = none needed
    forbid_account: bool = False  # must not contain the account name (Hưng Yên Đ8.2)
    forbid_name: bool = False  # … the person's name (Hưng Yên Đ8.2, Tuyên Quang Đ6)
    forbid_birth_date: bool = False  # … the date of birth (Hưng Yên Đ8.2)
    forbid_org: bool = False  # … the organisation or office name (Tuyên Quang Đ6)
    # the longest a password may be kept (Cao Bằng Đ6: 3 months; Hưng Yên Đ8.2: 6 months);
    # None where the regulation sets no limit (Tuyên Quang Đ6 only encourages a change).
    # Enforced by the directory's policy (syncd policy check|apply), not by syncd's runs.
    max_age: Duration | None = None


@dataclass(frozen=True)
class ReportRule:
    """A report the regulation asks of each organisation: how often, by when, where."""

    every: Duration  # the period one report covers (1y, 6m)
    due: tuple[int, int] | None  # (month, day) a yearly report is due by; None: period end
    article: str


@dataclass(frozen=True)
class Reports:
    usage: ReportRule | None = None  # the report on mailbox use (syncd report)
    address_list: str | None = None  # the article asking to publish the addresses


FORWARDING_ACTIONS = ("report", "remove")
_DOMAIN = re.compile(r"(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?")


@dataclass(frozen=True)
class Forwarding:
    """Automatic forwarding only to mailboxes a state body issued (Hưng Yên Đ4.5).

    ``state_domains`` say which addresses a state body issued: a domain (``hungyen.gov.vn``)
    or every domain under one (``*.gov.vn``: ``sokhcn.hungyen.gov.vn`` too); the province's
    own mail domain (syncd.yaml ``domain``) always counts. ``remove`` False (``action:
    report``) only reports a mailbox forwarding elsewhere: a forwarding address may be a
    person's only copy of their mail, and removing it silently is the operator's call, made
    with ``action: remove`` (a site's ``rules: {forwarding: {action: remove}}``).
    """

    article: str
    state_domains: tuple[str, ...]
    remove: bool
    source: str
    # whose list ``state_domains`` is: the regulation's, or a site's that replaced it
    domains_source: str = ""


@dataclass(frozen=True)
class Quota:
    """The least storage each new mailbox must be given (Hưng Yên Đ8.1b: 2 GB personal,
    10 GB organisation), in MiB. syncd writes the quota where the directory profile carries
    one (``directory.quota_mb``) and refuses a configuration that would give less; elsewhere
    the mail server's own setting must meet it (``syncd rules`` says so)."""

    personal_min_mb: int
    organisation_min_mb: int
    article: str


@dataclass(frozen=True)
class MailServerRule:
    """A promise the mail server keeps, not the directory (the attachment limit, the warning
    near the quota): cited by ``syncd rules``; docs/mail-server.md has the setting."""

    article: str
    value: int | None = None


@dataclass(frozen=True)
class Mailbox:
    quota: Quota | None = None
    attachment_max_mb: MailServerRule | None = None  # Hưng Yên Đ8.1b: 25 MB
    quota_warning: MailServerRule | None = None  # Tuyên Quang Đ9.2d: warn near the quota


@dataclass(frozen=True)
class Profile:
    """One province's regulation as syncd enforces it."""

    id: str
    title: str
    scheme: str  # the id of the scheme new mailboxes get
    password: PasswordRule
    must_change_article: str  # the default password must be changed at first login
    hr_article: str  # create / change / revoke follow personnel decisions
    request_article: str  # requests from the organisation (form, list)
    lifecycle: Lifecycle
    # the uid schemes this regulation defines (its own, and variants it allows), by id
    schemes: Mapping[str, Scheme] = field(default_factory=dict)
    reports: Reports = field(default_factory=Reports)
    # what each mailbox is given and what the mail server promises (Hưng Yên Đ8.1b, Tuyên
    # Quang Đ9.2d)
    mailbox: Mailbox = field(default_factory=Mailbox)
    # where automatic forwarding may go (Hưng Yên Đ4.5); None: the regulation says nothing
    forwarding: Forwarding | None = None


def _forwarding(
    data: Any, where: str, source: str, base: Forwarding | None = None
) -> Forwarding | None:
    """``forwarding:`` (article, state_domains, action); ``base``: the regulation's rule a
    site's override changes key by key. A site's ``state_domains`` *replaces* the
    regulation's list (a site may need to narrow it, which a merge could not do; ``syncd
    rules`` names whose list holds). Every domain is checked: a typo would make a whole
    province's forwarding look outside (or a foreign one inside), and a public suffix
    (``vn``, ``*.vn``, ``*.com``) would make every mailbox under it "a state body's"."""
    if data is None and base is None:
        return None
    if not isinstance(data, Mapping):
        raise ProfileError(f"{where}: needs article:, state_domains: and action: report|remove")
    unknown = set(data) - {"article", "state_domains", "action"}
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {sorted(unknown)}")
    article = data.get("article", base.article if base else None)
    if not isinstance(article, str) or not article.strip():
        raise ProfileError(f"{where}: article: the article the rule enforces is required")
    domains = data.get("state_domains", list(base.state_domains) if base else None)
    if not isinstance(domains, list) or not domains:
        raise ProfileError(f"{where}: state_domains: a non-empty list, e.g. ['*.gov.vn']")
    for d in domains:
        if not isinstance(d, str) or not _DOMAIN.fullmatch(d):
            raise ProfileError(
                f"{where}: state_domains: {d!r} is not a lower-case domain or *.<domain>"
            )
        if "." not in d.removeprefix("*."):
            raise ProfileError(
                f"{where}: state_domains: {d!r} is a whole top-level domain (a public suffix): "
                "name the state's own, e.g. '*.gov.vn' or 'hungyen.gov.vn'"
            )
    action = data.get("action", ("remove" if base.remove else "report") if base else "report")
    if action not in FORWARDING_ACTIONS:
        raise ProfileError(f"{where}: action: {action!r} is not one of {FORWARDING_ACTIONS}")
    domains_source = source if "state_domains" in data or base is None else base.domains_source
    return Forwarding(article, tuple(domains), action == "remove", source, domains_source)


def _clock(data: Any, where: str, source: str) -> Clock:
    if not isinstance(data, Mapping) or "article" not in data:
        raise ProfileError(f"{where}: needs after: and article:")
    unknown = set(data) - {"after", "article"}
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {sorted(unknown)}")
    after = data.get("after")
    return Clock(Duration.parse(after) if after is not None else None, str(data["article"]), source)


def _flag(data: Any, where: str, source: str) -> Flag:
    if not isinstance(data, Mapping) or not isinstance(data.get("value"), bool):
        raise ProfileError(f"{where}: needs value: true|false and article:")
    return Flag(data["value"], str(data.get("article", "")), source)


def _activity(data: Any, where: str, source: str) -> Activity:
    if not isinstance(data, Mapping) or "article" not in data or "sources" not in data:
        raise ProfileError(f"{where}: needs sources: [login, send, receive] and article:")
    sources = data["sources"]
    if (
        not isinstance(sources, list)
        or not sources
        or any(s not in ACTIVITY_KINDS for s in sources)
    ):
        raise ProfileError(f"{where}: sources must be a non-empty list of {ACTIVITY_KINDS}")
    return Activity(tuple(sources), str(data["article"]), source)


def _reports(data: Any, source: str) -> Reports:
    if data is None:
        return Reports()
    if not isinstance(data, Mapping):
        raise ProfileError(f"{source}: reports: must be a mapping")
    usage, listing = data.get("usage"), data.get("address_list")
    rule = None
    if usage is not None:
        where = f"{source}: reports.usage"
        if not isinstance(usage, Mapping) or not {"every", "article"} <= set(usage):
            raise ProfileError(f"{where}: needs every:, due: and article:")
        unknown = set(usage) - {"every", "due", "article"}
        if unknown:
            raise ProfileError(f"{where}: unknown key(s) {sorted(unknown)}")
        due = usage.get("due")
        parsed: tuple[int, int] | None = None
        if due is not None:
            m = re.fullmatch(r"(\d\d)-(\d\d)", str(due))
            if not m or not (1 <= int(m[1]) <= 12 and 1 <= int(m[2]) <= 31):
                raise ProfileError(f"{where}.due: {due!r} is not MM-DD")
            parsed = (int(m[1]), int(m[2]))
        rule = ReportRule(Duration.parse(str(usage["every"])), parsed, str(usage["article"]))
    if listing is not None and (not isinstance(listing, Mapping) or "article" not in listing):
        raise ProfileError(f"{source}: reports.address_list: needs article: (or null)")
    return Reports(rule, str(listing["article"]) if listing else None)


def _mailbox(data: Any, source: str) -> Mailbox:
    if data is None:
        return Mailbox()
    if not isinstance(data, Mapping):
        raise ProfileError(f"{source}: mailbox: must be a mapping")
    quota = data.get("quota")
    parsed: Quota | None = None
    if quota is not None:
        where = f"{source}: mailbox.quota"
        keys = {"personal_min_mb", "organisation_min_mb", "article"}
        if not isinstance(quota, Mapping) or set(quota) != keys:
            raise ProfileError(f"{where}: needs exactly {', '.join(sorted(keys))}")
        sizes = [quota["personal_min_mb"], quota["organisation_min_mb"]]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes):
            raise ProfileError(f"{where}: the minimums are whole MiB above 0")
        parsed = Quota(sizes[0], sizes[1], str(quota["article"]))

    def server_rule(key: str, valued: bool) -> MailServerRule | None:
        rule = data.get(key)
        if rule is None:
            return None
        where = f"{source}: mailbox.{key}"
        keys = {"value", "article"} if valued else {"article"}
        if not isinstance(rule, Mapping) or set(rule) != keys:
            raise ProfileError(f"{where}: needs exactly {', '.join(sorted(keys))}")
        value = rule.get("value")
        if valued and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise ProfileError(f"{where}.value: a whole number above 0")
        return MailServerRule(str(rule["article"]), value)

    return Mailbox(
        parsed, server_rule("attachment_max_mb", True), server_rule("quota_warning", False)
    )


_KEYS = {
    "": {
        "id",
        "title",
        "naming",
        "password",
        "articles",
        "lifecycle",
        "reports",
        "forwarding",
        "mailbox",
    },
    "reports": {"usage", "address_list"},
    "mailbox": {"quota", "attachment_max_mb", "quota_warning"},
    "naming": {"scheme", "schemes"},
    "articles": {"hr", "request", "must_change"},
    "lifecycle": {
        *CLOCKS,
        "locked_receives_mail",
        "activity",
        "delete_on_leave",
        "manual_lock",
    },
    "lifecycle.manual_lock": set(LOCK_REASONS),
}


def _strict(data: Mapping[str, Any], source: str) -> None:
    """A regulation file says only what the engine reads: a misspelt key is an error, never
    a rule silently left at its default."""
    if not isinstance(data, Mapping):
        raise ProfileError(f"{source}: must be a mapping")
    for where, allowed in _KEYS.items():
        node: Any = data
        for part in where.split(".") if where else []:
            node = node.get(part) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping):
            continue
        unknown = sorted(set(map(str, node)) - allowed)
        if unknown:
            raise ProfileError(
                f"{source}: {where or '(top)'}: unknown key(s) {unknown}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )


def parse_profile(data: Mapping[str, Any], source: str) -> Profile:
    _strict(data, source)
    try:
        lc = data["lifecycle"]
        pw = dict(data["password"])
        if pw.get("max_age") is not None:
            pw["max_age"] = Duration.parse(str(pw["max_age"]))
        arts = data["articles"]
        lifecycle = Lifecycle(
            **{
                k: _clock(lc[k], f"{source}: lifecycle.{k}", f"profile {data['id']}")
                for k in CLOCKS
            },
            locked_receives_mail=_flag(
                lc["locked_receives_mail"],
                f"{source}: lifecycle.locked_receives_mail",
                f"profile {data['id']}",
            ),
            manual_lock={r: str(lc["manual_lock"][r]) for r in LOCK_REASONS},
            activity=_activity(
                lc["activity"], f"{source}: lifecycle.activity", f"profile {data['id']}"
            ),
            delete_on_leave=_flag(
                lc["delete_on_leave"],
                f"{source}: lifecycle.delete_on_leave",
                f"profile {data['id']}",
            ),
        )
        naming = data["naming"]
        schemes: dict[str, Scheme] = {}
        for i, item in enumerate(naming.get("schemes", [])):
            try:
                sc = scheme_from_mapping(item, f"{source}: naming.schemes[{i}]")
            except SchemeError as exc:
                raise ProfileError(str(exc)) from exc
            schemes[sc.id] = sc
        return Profile(
            id=str(data["id"]),
            title=str(data["title"]),
            scheme=str(naming["scheme"]),
            password=PasswordRule(**pw),
            must_change_article=str(arts["must_change"]),
            hr_article=str(arts["hr"]),
            request_article=str(arts["request"]),
            lifecycle=lifecycle,
            schemes=schemes,
            reports=_reports(data.get("reports"), source),
            mailbox=_mailbox(data.get("mailbox"), source),
            forwarding=_forwarding(
                data.get("forwarding"), f"{source}: forwarding", f"profile {data['id']}"
            ),
        )
    except (KeyError, TypeError) as exc:
        raise ProfileError(f"{source}: missing or malformed {exc}") from exc


def with_overrides(profile: Profile, rules: Mapping[str, Any], source: str) -> Profile:
    """A site's ``rules:`` section in syncd.yaml replaces single lifecycle rules, and the
    forwarding rule's keys (``forwarding: {action: remove}``)."""
    lc = profile.lifecycle
    changes: dict[str, Any] = {}
    for key, value in rules.items():
        where = f"{source}: rules.{key}"
        if key == "forwarding":
            profile = replace(
                profile, forwarding=_forwarding(value, where, source, profile.forwarding)
            )
        elif key in CLOCKS:
            if isinstance(value, Mapping) and "article" not in value:
                value = {**value, "article": getattr(lc, key).article + " (site override)"}
            changes[key] = _clock(value, where, source)
        elif key in ("locked_receives_mail", "delete_on_leave"):
            changes[key] = _flag(value, where, source)
        elif key == "activity":
            changes[key] = _activity(value, where, source)
        else:
            raise ProfileError(
                f"{where}: unknown rule (known: {', '.join(CLOCKS)}, locked_receives_mail, "
                "delete_on_leave, activity, forwarding)"
            )
    return replace(profile, lifecycle=replace(lc, **changes))
