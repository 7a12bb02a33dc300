"""What git says about the code: the commit, uncommitted changes, and whether a commit records fingerprints.

Committed results must name the commit that made them (``environment.json``'s ``git_commit``),
so ``normtest run --runs-root results`` refuses a working tree with uncommitted changes under
``normtest_lib/``; and a run without ``fingerprint.json`` is a legacy run only if the commit
that made it predates fingerprints, which its own record and git's history tell, not a list.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..engine.environment import git_commit

PACKAGE = Path(__file__).resolve().parents[1]  # normtest_lib/
FINGERPRINT_MODULE = "normtest_lib/engine/fingerprint.py"  # in a commit's tree: that commit records fingerprints
COMMITTED_RESULTS = "results"  # the runs root whose runs are committed (README, "Where results go")

__all__ = ["commit_records_fingerprints", "current_commit", "is_committed_results_root", "uncommitted_library_changes"]


def _git(*args: str) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(["git", *args], cwd=PACKAGE, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None


def current_commit() -> str | None:
    """The checkout's commit, or None outside a git checkout."""
    return git_commit()


def uncommitted_library_changes() -> list[str] | None:
    """``git status --porcelain`` lines for ``normtest_lib/`` (modified, staged, untracked); None without git."""
    result = _git("status", "--porcelain", "--untracked-files=normal", "--", str(PACKAGE))
    if result is None or result.returncode != 0:
        return None
    return [line for line in result.stdout.splitlines() if line.strip() and not line.rstrip().endswith(".pyc")]


def commit_records_fingerprints(commit: str | None) -> bool | None:
    """Whether code at ``commit`` writes ``fingerprint.json``; None when git cannot tell (no commit, a shallow clone)."""
    if not commit:
        return None
    known = _git("cat-file", "-e", f"{commit}^{{commit}}")
    if known is None or known.returncode != 0:
        return None
    has = _git("cat-file", "-e", f"{commit}:{FINGERPRINT_MODULE}")
    return has is not None and has.returncode == 0


def is_committed_results_root(runs_root: str | Path) -> bool:
    """A runs root named ``results``: its runs are meant to be committed."""
    return Path(runs_root).resolve().name == COMMITTED_RESULTS
