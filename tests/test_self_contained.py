"""The suite runs whole on a bare clone: no test reads the shared data folder beside the
repository, and every committed fixture is small and has its source written down."""

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"


def test_no_test_reaches_outside_the_repository():
    # any path above the repository: parents[2] and up of a test file, a literal "../", or /work/
    outside = re.compile(r"""parents\[[2-9]\]|["']\.\./|["']/work/""")
    exempt = (Path(__file__).name,)
    offenders = [f"{p.relative_to(TESTS)}:{i}" for p in sorted(TESTS.rglob("*.py")) if p.name not in exempt
                 for i, line in enumerate(p.read_text().splitlines(), 1) if outside.search(line)]
    assert not offenders, offenders


def test_fixtures_are_small_and_each_is_named_in_the_readme():
    files = [p for p in DATA.rglob("*") if p.is_file() and p.name != "README.md" and "__pycache__" not in p.parts]
    assert files
    assert sum(p.stat().st_size for p in files) < 1_000_000  # with data/demo's 4 MB, under 5 MB in all
    readme = (DATA / "README.md").read_text()
    assert not [p.name for p in files if p.name not in readme]
