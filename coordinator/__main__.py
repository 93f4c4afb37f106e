"""`python -m coordinator` is the same as the `coordinator` command."""

from coordinator.cli import main

main()
