"""Importable helpers shared by the tests."""
