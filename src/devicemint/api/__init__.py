"""The HTTP API (FastAPI): `create_app` builds it from settings and its backends."""
