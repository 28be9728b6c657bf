from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from devicemint.db.session import make_engine, migrate, session_factory


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """A freshly migrated database of each kind."""
    engine = make_engine(database_url)
    migrate(engine)
    yield session_factory(engine)
    engine.dispose()
