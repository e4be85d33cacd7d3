"""`python -m nst.cli`: the same as `nst`."""
import sys

from nst.cli import main

sys.exit(main())
