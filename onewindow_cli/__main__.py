"""`python -m onewindow_cli ...`: the same as the `onewindow` command."""

import sys

from onewindow_cli.cli import main

sys.exit(main())
