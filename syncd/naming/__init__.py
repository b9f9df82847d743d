"""Vietnamese names → compliant uids: text folding, legacy encodings, parsing, schemes."""

from syncd.naming.allocate import Allocation, Status, UidPool, allocate
from syncd.naming.parse import ParsedName, parse_name
from syncd.naming.schemes import Collision, Scheme
from syncd.naming.text import fold_words, normalise, to_ascii

__all__ = [
    "Allocation",
    "Collision",
    "ParsedName",
    "Scheme",
    "Status",
    "UidPool",
    "allocate",
    "fold_words",
    "normalise",
    "parse_name",
    "to_ascii",
]
