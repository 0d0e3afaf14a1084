"""``python -m pmx.cli`` (what torchrun launches) runs the same CLI as ``pmx``."""

from pmx.cli.main import cli

if __name__ == "__main__":
    cli()
