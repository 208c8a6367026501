"""``python -m core.cli``: the same as the ``verwijsindex`` command."""

from core.cli.app import main

if __name__ == "__main__":
    main()
