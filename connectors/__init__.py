"""Adapters to the outside world (files, LDAP, terminal) behind the interfaces of :mod:`syncd`."""
