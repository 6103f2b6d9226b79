"""Everything that computes. No Qt here: tests/engine/test_no_qt.py enforces it."""
