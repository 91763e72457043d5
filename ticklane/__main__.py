"""`python -m ticklane` runs the command line."""

from ticklane.cli import main

main()
