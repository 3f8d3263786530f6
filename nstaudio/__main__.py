"""``python -m nstaudio`` is the ``nstaudio`` command."""

from nstaudio.cli.main import main

main(prog_name="nstaudio")
