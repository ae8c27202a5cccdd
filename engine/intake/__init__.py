"""Incoming facts: web signatures, CSV imports."""
