"""``python -m hbeam`` — the ``hbeam`` command line (:mod:`hbeam.cli`)."""

from hbeam.cli import main

if __name__ == "__main__":
    main()
