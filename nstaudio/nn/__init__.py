"""A small neural-network toolkit for the `feedforward` method: layers with hand-written backward passes.

Every layer follows one convention (DESIGN.md, after numpy-ml): ``y, cache = layer.forward(params, x)``
and ``dx, grads = layer.backward(params, cache, dy)``, with ``params`` and ``grads`` dicts of
arrays keyed by name, so an optimizer can update them by name.
"""
