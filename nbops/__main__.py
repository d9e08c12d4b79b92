"""`python -m nbops` runs the command line."""

from nbops.cli import main

main()
