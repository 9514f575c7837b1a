"""The one exception type the CLI turns into a one-line message and exit status 2."""


class UserError(Exception):
    """Bad input: the message names the problem and the fix, in one line."""

    exit_code = 2


class CapabilityMissing(UserError):
    """What was asked for cannot run this way (an average run as a suite, a backend without a needed capability)."""
