"""The docs stay true to the code: every test they cite exists."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_every_test_the_docs_cite_exists():
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    cited = {(name, test) for doc in docs
             for name, test in re.findall(r"(test_\w+\.py)::(test_\w+)", doc.read_text(encoding="utf-8"))}
    assert len(cited) > 20
    missing = [f"{name}::{test}" for name, test in sorted(cited)
               if not (REPO / "tests" / name).is_file()
               or f"def {test}(" not in (REPO / "tests" / name).read_text(encoding="utf-8")]
    assert not missing, f"docs cite tests that do not exist: {missing}"
