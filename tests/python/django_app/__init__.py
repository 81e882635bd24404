"""A Django app as a pgvector user writes it (pgvector-python's Django
support, a migration that starts with VectorExtension()), migrated against
vector_ext through the `vector` alias (scripts/vector-alias.sh) by
tests/python/test_vector_alias.py."""
