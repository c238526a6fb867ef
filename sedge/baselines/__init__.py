"""Comparison methods from the literature (SPEC §10)."""
