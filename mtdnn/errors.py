"""One exception type for bad input: the CLI prints it as a single line and exits non-zero."""


class MtdnnError(Exception):
    """User-facing error: bad params, malformed data, unknown task. Never a bug."""


def where(path: object, line: int | None = None, key: str | None = None) -> str:
    """Format a location prefix like ``file.tsv:12`` or ``params.yaml: finetune.lr``."""
    loc = str(path)
    if line is not None:
        loc += f":{line}"
    if key is not None:
        loc += f": {key}"
    return loc
