"""Alembic's environment and the hub's schema migrations (run them with porchlight.hub.schema)."""
