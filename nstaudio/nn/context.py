"""How much context a trained style network's frames are computed with, offline and streaming alike."""

# Frames of context on each side of the chunks the network runs on; the first frame is repeated
# that many times before the start, by the `feedforward` method and by nstaudio.Stream, so that
# the stream's frames equal the offline ones.
CONTEXT_FRAMES = 64
