"""Shared storage: the SQLAlchemy engine run off the reactor thread, and the migrations."""
