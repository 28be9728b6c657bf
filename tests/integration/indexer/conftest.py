"""The minting fixtures (a licensed sample manufacturer on a real anvil, both databases)."""

from tests.integration.minting.conftest import programme  # noqa: F401  re-exported fixture
