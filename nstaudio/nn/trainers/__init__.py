"""The trainers, one module per network: ``lossnet`` (the loss network), ``style`` (a style model's
transformation network) and ``gan`` (MelGAN-VC's three networks).

Each goes from recordings (:mod:`nstaudio.nn.corpus`) to a :class:`~nstaudio.nn.model_file.Model`
through the one resumable loop (:mod:`nstaudio.nn.training`), and has a ``check_train_*`` that
checks its settings before any audio is read.
"""
