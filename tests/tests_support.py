"""Paths shared by test modules."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
REAL_CORPUS = ROOT / "corpus"
FIXTURE_CORPUS = TESTS / "data" / "corpus"
