"""SQLAlchemy models and the set-based queries that apply plans. Never commits."""
