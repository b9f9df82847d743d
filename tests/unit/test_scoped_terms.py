"""A scoped read asks the server for the namespace's entries without an employee number and
those carrying an address of the organisations in scope (``_scoped_filters``). From the
snapshot's names cache it reads them from ``name_terms`` (``_names_terms``) instead of
decoding every Name: for any namespace, organisations and entries already found, and any
profile built on OpenLdapDirectory, both ask the same searches in the same order. Pure: no
server (the directory object never connects)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.config import DirectoryConfig
from connectors.directory import PROFILES, profile
from connectors.directory.openldap import OpenLdapDirectory, _CachedNames, _names_terms
from syncd.model import Account, Kind, Name
from syncd.ports import Scope

DOMAIN = "Test.gov.vn"
CODES = ["skhcn", "stc", "a.b", "b", "x"]
locals_ = st.builds(
    lambda user, tail: f"{user}{tail}",
    st.sampled_from(["hung", "lan.", "an.x", "Mai"]),
    st.sampled_from(["", ".skhcn", ".STC", ".a.b", ".b", "."]),
)
mails = st.builds(
    lambda local, dom: f"{local}@{dom}",
    locals_,
    st.sampled_from([DOMAIN, "test.gov.vn", "other.vn"]),
)


@st.composite
def namespaces(draw: st.DrawFn) -> list[Name]:
    count = draw(st.integers(min_value=0, max_value=25))
    names = []
    for i in range(count):
        names.append(
            Name(
                dn=f"uid=u{i},ou={draw(st.sampled_from(['P', 'q']))},dc=test",
                uid=draw(st.sampled_from(["", f"u{i}", f"U{i}.skhcn"])),
                mail=tuple(draw(st.lists(mails, max_size=3))),
                kind=draw(st.sampled_from(list(Kind))),
                employee_number=draw(st.sampled_from([None, "", f"E{i}"])),
            )
        )
    return names


def _directory(name: str) -> OpenLdapDirectory:
    cfg = DirectoryConfig(
        url="ldap://127.0.0.1",
        bind_dn="cn=syncd,dc=test",
        base_dn="dc=test",
        profile=name,
        bind_password_env="SYNCD_BIND_PASSWORD",
    )
    made = profile(name)(cfg, "x", DOMAIN)
    assert isinstance(made, OpenLdapDirectory)
    return made


def _no_decoding() -> list[Name]:
    raise AssertionError("the namespace was decoded")


@settings(max_examples=200, deadline=None)
@given(
    namespaces(),
    st.sets(st.sampled_from(CODES), max_size=3),
    st.data(),
    st.sampled_from(sorted(set(PROFILES) - {"ad"})),
)
def test_the_cached_terms_ask_what_scanning_the_namespace_asks(
    names: list[Name], orgs: set[str], data: st.DataObject, which: str
) -> None:
    directory = _directory(which)
    ordered = sorted(names, key=lambda n: n.dn.lower())
    # entries read anew since the snapshot: their cached names are replaced by fresh ones
    anew = data.draw(st.sets(st.sampled_from([n.dn.lower() for n in ordered] or ["-"])))
    fresh = data.draw(namespaces())
    fresh = [n._replace(dn=f"{n.dn}-new") for n in fresh]
    overlay = {dn: None for dn in anew} | {n.dn.lower(): None for n in fresh}
    found = data.draw(st.sets(st.sampled_from([n.dn.lower() for n in ordered] or ["-"])))
    seen = {dn: Account(dn=dn, uid="") for dn in found}
    scope = Scope(orgs=orgs, employee_numbers=set())
    plain = [n for n in ordered if n.dn.lower() not in overlay] + fresh
    terms = {code: (n, blob) for code, n, blob in _names_terms(names, DOMAIN)}
    cached = _CachedNames(
        [],
        0,
        fresh,
        overlay,
        _no_decoding,
        lambda wanted: [terms[k] for k in ("", *wanted) if k in terms],
    )
    assert list(directory._scoped_filters(scope, cached, seen)) == list(
        directory._scoped_filters(scope, plain, seen)
    )
