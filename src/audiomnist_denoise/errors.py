"""The one error type the pipeline raises for bad input; stages turn it into a one-line message."""


class PipelineError(Exception):
    """Bad input: a file, a parameter or an archive that the pipeline refuses, with the reason."""
