"""Property-based tests of the naming engine (hypothesis)."""

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.regulations import SCHEMES as BUILTIN
from devtools.samples import FAMILY, GIVEN_FEMALE, GIVEN_MALE, MIDDLE_FEMALE, MIDDLE_MALE
from syncd.naming import Status, UidPool, allocate
from syncd.naming.allocate import RESERVED, check_local_part

WORDS = sorted(set(FAMILY + MIDDLE_MALE + MIDDLE_FEMALE + GIVEN_MALE + GIVEN_FEMALE))
names = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join)
orgs = st.from_regex(r"[a-z][a-z0-9]{0,11}", fullmatch=True)
schemes = st.sampled_from(sorted(BUILTIN))
whitespace = st.sampled_from([" ", "  ", "\t", "\u00a0", " \u00a0 "])
TONE_SWAPS = {"oà": "òa", "oá": "óa", "uỷ": "ủy", "uý": "úy", "oè": "òe"}


@given(scheme_id=schemes, name=st.text(min_size=1, max_size=80), org=orgs)
@settings(max_examples=300)
def test_any_ok_uid_is_a_valid_local_part(scheme_id: str, name: str, org: str) -> None:
    result = allocate(BUILTIN[scheme_id], name, org, UidPool.build())
    if result.status is Status.OK:
        assert check_local_part(result.uid) is None
    else:
        assert result.uid == ""
        assert result.detail


@given(scheme_id=schemes, name=names, org=orgs, ws=whitespace, form=st.sampled_from(["NFC", "NFD"]))
def test_case_whitespace_normal_form_and_tone_placement_never_change_the_uid(
    scheme_id: str, name: str, org: str, ws: str, form: str
) -> None:
    scheme = BUILTIN[scheme_id]
    variant = name.upper().replace(" ", ws)
    for old, new in TONE_SWAPS.items():
        variant = variant.replace(old.upper(), new.upper())
    variant = unicodedata.normalize(form, f" {variant} ")
    a = allocate(scheme, name, org, UidPool.build())
    b = allocate(scheme, variant, org, UidPool.build())
    assert (a.status, a.uid) == (b.status, b.uid)


@given(
    scheme_id=schemes,
    people=st.lists(st.tuples(names, st.sampled_from(["skhcn", "tgg", "syt"])), max_size=60),
    tombstones=st.lists(st.sampled_from(["hungdv.skhcn", "datnv", "nvan.tgg", "anv.syt"])),
)
def test_batch_never_yields_duplicates_reserved_or_tombstoned(
    scheme_id: str, people: list[tuple[str, str]], tombstones: list[str]
) -> None:
    pool = UidPool.build(reserved=["sokhcn", "ubndtangiang"], tombstones=tombstones)
    uids = [allocate(BUILTIN[scheme_id], n, o, pool).uid for n, o in people]
    issued = [u for u in uids if u]
    assert len(issued) == len(set(issued))
    assert not set(issued) & (RESERVED | {"sokhcn", "ubndtangiang"} | set(tombstones))


@given(scheme_id=schemes, name=names, org=orgs, held=st.lists(names, max_size=4))
def test_the_names_a_uid_was_given_past_are_only_names_the_directory_held(
    scheme_id: str, name: str, org: str, held: list[str]
) -> None:
    """``UidPool.consulted``: the held names a name was given past, never one this pool gave
    out itself (what a scoped run checks on the server: runner._names_outdated)."""
    scheme = BUILTIN[scheme_id]
    directory = UidPool.build()
    for other in [*held, name]:
        allocate(scheme, other, org, directory)
    pool = UidPool.build(taken=directory.taken)
    given = [allocate(scheme, name, org, pool).uid for _ in range(3)]
    assert pool.consulted <= set(directory.taken)
    assert not pool.consulted & {u for u in given if u}


def test_a_numbered_uid_names_the_held_uid_it_was_given_past() -> None:
    pool = UidPool.build(taken=["hienhd.skhcn"])
    scheme = BUILTIN["caobang-2025"]
    assert allocate(scheme, "Hoàng Đức Hiền", "skhcn", pool).uid == "hienhd1.skhcn"
    assert allocate(scheme, "Hoàng Đức Hiền", "skhcn", pool).uid == "hienhd2.skhcn"
    assert pool.consulted == {"hienhd.skhcn"}  # hienhd1.skhcn: given out by this pool


def test_a_name_that_belonged_to_someone_goes_back_to_them_only() -> None:
    """``UidPool.former``: names of entries that vanished, with whose they were. The numbering
    passes a name another person held without remembering it as used for everyone, so its
    owner, asking later, still gets it."""
    scheme = BUILTIN["caobang-2025"]
    former = {"hienhd.skhcn": "E2", "hienhd1.skhcn": "E5", "hienhd2.skhcn": ""}
    pool = UidPool.build(former=former)
    assert allocate(scheme, "Hoàng Đức Hiền", "skhcn", pool, employee="E5").uid == "hienhd1.skhcn"
    assert allocate(scheme, "Hoàng Đức Hiền", "skhcn", pool, employee="e2 ").uid == "hienhd.skhcn"
    stranger = allocate(
        scheme, "Hoàng Đức Hiền", "skhcn", UidPool.build(former=former), employee="E7"
    )
    assert stranger.uid == "hienhd3.skhcn"  # hienhd2.skhcn was nobody's known: never again
    assert stranger.detail.startswith("hienhd.skhcn is held before by another person")
    assert allocate(scheme, "Hoàng Đức Hiền", "skhcn", UidPool.build()).uid == "hienhd.skhcn"
