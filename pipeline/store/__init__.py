"""The history store: one SQLite file per office, its schema, queries and what is recorded."""

from pipeline.store.database import RoundRecord, Store, StoreError, open_store

__all__ = ["RoundRecord", "Store", "StoreError", "open_store"]
