"""One exception type for bad input: the CLI prints it as a single line and exits non-zero."""


class MtdnnError(Exception):
    """User-facing error: bad params, malformed data, unknown task. Never a bug."""
