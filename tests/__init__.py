"""onewindow's test suite: unit (pure, fast), integration (real Kafka, PostgreSQL,
Prometheus) and e2e (the processes `onewindow up` starts, a real browser)."""

from pathlib import Path

#: The checkout's root: the tests read the repository's own files (ops/, docs/, the
#: Dockerfile) from here; the code under test never does.
REPO_ROOT = Path(__file__).resolve().parent.parent
