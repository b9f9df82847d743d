"""syncd core: pure provisioning logic for Vietnamese provincial mail directories.

Nothing in this package touches LDAP, files or the clock directly; those arrive through the
interfaces the core defines and the adapters in :mod:`connectors` implement.
"""

__version__ = "0.1.0"
