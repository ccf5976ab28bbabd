"""Tests of one module each, calling it directly: test_<module>.py."""
