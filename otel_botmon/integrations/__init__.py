"""Integrations with trading frameworks (each needs its own optional extra)."""
