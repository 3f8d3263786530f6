"""A small neural-network toolkit for the trained methods (`feedforward`, `gan`): layers with hand-written
backward passes, the networks, the model file, one resumable training loop and the trainers.

Every layer follows one convention (DESIGN.md, after numpy-ml): ``y, cache = layer.forward(params, x)``
and ``dx, grads = layer.backward(params, cache, dy)``, with ``params`` and ``grads`` dicts of
arrays keyed by name, so an optimizer can update them by name.

- ``layers``, ``losses``, ``gan_losses``, ``optim``, ``spectral_norm``: the pieces.
- ``autoencoder`` (the loss network and a style model's transformation network), ``melgan``
  (the gan's generator, siamese network and critic): the networks; ``inference`` runs an
  autoencoder over any length.
- ``checkpoint`` (the bytes, read without trusting them) and ``model_file`` (``Model``,
  what a header says about the model): the model file.
- ``corpus``: recordings as networks train on them; ``training``: the resumable loop;
  ``trainers``: one module per network (``lossnet``, ``style``, ``gan``).
"""
