"""The one user-facing error type.

Raise SeamountaeError for anything the user can fix (a bad file, a bad option); its message names
the file, the problem and the fix, on one line. Any other exception is a bug.

Layer 1, foundations: imports layer 1 only.
"""


class SeamountaeError(Exception):
    """A problem with the user's input or environment, explained in one line."""
