"""Interop tests against real Node Bull 4.16.5 (``bridge/``), driven through ``peer.py``."""
