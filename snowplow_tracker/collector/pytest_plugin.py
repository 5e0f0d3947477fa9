"""pytest plugin for the local collector (filled in by the collector work)."""
