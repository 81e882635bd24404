import pytest

from helpers import load_data


@pytest.fixture(scope="module")
def data():
    """Base rows, queries and extra rows of the fixture tests/data/ds-a-20k (float32)."""
    return load_data()
