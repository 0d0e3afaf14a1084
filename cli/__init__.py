"""The ``pmx`` command-line interface (click)."""
