import sys

from sinks.migrations import main

sys.exit(main())
