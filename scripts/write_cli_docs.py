"""Write docs/cli.md's option table from the settings schema (tests/test_methods_registry.py checks it).

    python scripts/write_cli_docs.py
"""

import os

from nstaudio import settings
from nstaudio.methods import REGISTRY

BEGIN, END = "<!-- options:begin -->", "<!-- options:end -->"


def main():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "cli.md")
    text = open(path).read()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    table = settings.markdown_table(REGISTRY.methods())
    with open(path, "w") as out:
        out.write(f"{head}{BEGIN}\n{table}\n{END}{tail}")
    print(f"wrote the option table of {path}")


if __name__ == "__main__":
    main()
