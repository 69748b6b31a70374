"""The one exception type for mistakes a user can make.

The command line turns a Q2MRIError into one line on stderr and a non-zero exit; anything
else is an internal error. Messages name the problem and the fix.
"""


class Q2MRIError(Exception):
    """A user-caused problem (bad input, missing parameter, unwritable output)."""
