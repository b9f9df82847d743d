"""Directory profiles behind :class:`syncd.ports.Directory`."""
