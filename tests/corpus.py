"""Where the shared third-party corpus is: ../shared/corpus beside the repository, or
$CATALOGUE_TEST_CORPUS. Files under licences that forbid copying them into tests/data (AGPL,
unverified) are read there in place; tests needing them skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("CATALOGUE_TEST_CORPUS", ROOT.parent / "shared" / "corpus"))
