"""The history store: one SQLite file per office, its schema, queries and what is recorded."""
