"""Helpers for tests that start the real services on free loopback ports."""
