"""`python -m sweep ...` and the `sweep` script: the command line (see sweep.cli)."""
from sweep.cli import main
from sweep.shutdown import exit_now


def run():
    exit_now(main())


if __name__ == "__main__":
    run()
