"""Developer tools, not shipped: a throwaway real slapd (tests, benchmarks, the demo), sample
names and rosters, and `make demo`. Nothing in syncd/ or connectors/ imports this package."""
