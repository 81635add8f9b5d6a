"""``python -m mediaprep``: the ``mediaprep`` command, for environments without the script."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="mediaprep")
