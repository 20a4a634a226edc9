"""Fixtures shared by several test modules."""

import pytest


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One evaluator cache for the whole test session, so the mnist-5k classifier is trained once."""
    path = tmp_path_factory.getbasetemp() / "evaluator-cache"
    path.mkdir(exist_ok=True)
    return path
