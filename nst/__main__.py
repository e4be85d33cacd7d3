"""`python -m nst ...` is the `nst` command."""
from .cli import main

main()
