"""`python -m perago.cli ...` behaves like the `perago` console script."""

from perago.cli import main

main()
