"""`python -m hawatch`: the same as the `hawatch` command."""

import sys

from hawatch.cli import main

sys.exit(main())
