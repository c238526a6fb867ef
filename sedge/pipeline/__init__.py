"""The reproducible pipeline: cached stages keyed by configuration, inputs, data and code
fingerprint; the stage functions the chapters call; the chapter sources, their parameters and
profiles; the comparison table; and the book runner (``sedge book``)."""
