"""Parsing at the edge (STYLE 3): bytes of a mail into text, fields, rows and reply keywords.
Pure functions: no network, no database. Nothing here raises on malformed input."""
