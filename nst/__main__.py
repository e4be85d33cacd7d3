"""`python -m nst ...` is the `nst` command."""
import sys

from .cli import main

sys.exit(main())
