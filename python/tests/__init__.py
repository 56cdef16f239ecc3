"""Tests of the labmate Python client (see test_client.py)."""
