"""`python -m recipe_core` is the `recipe` command."""

from recipe_core.cli import main

main()
