import pytest

from helpers import load_data


@pytest.fixture(scope="module")
def data():
    """Base rows, queries and extra rows of ds-a-npm-minilm (float32)."""
    return load_data()
