"""The rounds an office consolidates; each plugs into the engine (see base.py)."""
