"""Errors that mean "the user asked for something wrong", as opposed to a bug.

The `pbg` command turns a `UserError` into one line, ``error: <message>``, and exit
status 2 (no traceback unless ``--debug``). Library code raises the most specific
subclass and puts the *where* (file, line, key) in the message.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: a bad path, config key, flag or data line."""


class InputFileError(UserError):
    """A data file is missing, empty, malformed or foreign. Message names FILE[:LINE]."""


class ConfigError(UserError):
    """A config is invalid. Message names the key."""
