"""``python -m harness`` (and ``accelerate launch -m harness run ...``) is the ``harness`` command."""

from harness.cli import main

if __name__ == "__main__":
    main()
