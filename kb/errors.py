"""Errors a user can act on. Every message says what happened and what to do next."""

from __future__ import annotations


class KBError(Exception):
    """Base class: the CLI prints the message on one line and exits non-zero."""

    exit_code = 1


class ConfigError(KBError):
    """A setting has a value that cannot work."""


class CorpusError(KBError):
    """The corpus directory is missing, empty, or has no readable document."""


class IndexMissingError(KBError):
    """No built index where one was expected."""

    exit_code = 2


class IndexCorruptError(KBError):
    """An index build is incomplete or its files do not match its manifest."""

    exit_code = 2


class IndexIncompatibleError(KBError):
    """An index was built with another model, tokenizer or format than the one configured."""

    exit_code = 2


class ModelError(KBError):
    """The embedding model cannot be prepared or loaded."""


class BuildLockedError(KBError):
    """Another build holds the index lock."""


class InputError(KBError):
    """A query or message cannot be processed as given."""
