"""Helpers that tests of several kinds share: builders, fakes and fixtures, never tests."""
