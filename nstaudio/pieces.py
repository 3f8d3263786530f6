"""Work done in pieces: a generator that stops after each piece (a stream runs them in the gaps
between its audio blocks) and returns its result; :func:`finish` runs one through at once."""


def finish(pieces):
    """Run the generator ``pieces`` to its end; its return value."""
    while True:
        try:
            next(pieces)
        except StopIteration as finished:
            return finished.value
