"""Vietnamese names → compliant uids: text folding, legacy encodings, parsing, schemes."""

from syncd.naming.allocate import Allocation, Status, UidPool, allocate
from syncd.naming.parse import ParsedName, parse_name
from syncd.naming.schemes import BUILTIN, Collision, Scheme, get_scheme
from syncd.naming.text import fold_words, normalise, to_ascii

__all__ = [
    "BUILTIN",
    "Allocation",
    "Collision",
    "ParsedName",
    "Scheme",
    "Status",
    "UidPool",
    "allocate",
    "fold_words",
    "get_scheme",
    "normalise",
    "parse_name",
    "to_ascii",
]
