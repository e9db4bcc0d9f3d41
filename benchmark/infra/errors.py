"""The one exception type for user mistakes: bad params, bad input files, missing data or weights."""


class BenchmarkError(Exception):
    """A problem the user can fix; the CLI prints its message as one line and exits 1.

    The message names the offending file, key or parameter, what was wrong, and what is expected.
    """
