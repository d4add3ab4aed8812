"""Pieces every room shares: configuration, privacy masking, logging."""
