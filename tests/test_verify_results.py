"""CI: the committed results are the current code's numbers (``normtest verify --sample`` over results/).

Every committed profile of every study is sampled, one run per variant (SAMPLE per set). A
fingerprinted run that no longer verifies fails, naming its first difference: a change that
alters committed numbers lands only with the affected runs rerun (``normtest run ... --rerun-stale``).
Runs without a fingerprint are reported, not failed, only when the commit that made them
predates fingerprints (their own ``environment.json`` against git's history): so the set of
such runs can only shrink. Real-data runs read the archives of ../shared/data (extracted by
conftest); without them this test is skipped when a sampled run needs them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from normtest_lib.verify.run import DIFFERS, MISSING, NO_FINGERPRINT, UNAVAILABLE, has_fingerprint
from normtest_lib.verify.sample import finished_runs, result_sets, verify_sample

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
SAMPLE = 3  # runs per result set: about 10 s each once the data set is decoded, on 2 cores
DATA_FOLDERS = {"cifar10-jpeg": ("cifar10-jpeg.tar.gz", "cifar10-jpeg"),
                "tiny-imagenet-200": ("tiny-imagenet-200.tar.gz", "tiny-imagenet-200")}  # fmt: skip


def data_root_project(tmp_path: Path) -> Path:
    """A folder whose data/ links to the extracted archives, for the runs' data_root: data/<name>."""
    from conftest import SHARED_DATA, extract_once

    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    fingerprinted = any(has_fingerprint(run) for folder in result_sets(RESULTS) for run in finished_runs(folder))
    for name, (archive, folder) in DATA_FOLDERS.items():
        if fingerprinted and (SHARED_DATA / archive).is_file():  # extracted only when some run can be recomputed
            (project / "data" / name).symlink_to(extract_once(SHARED_DATA / archive) / folder)
    (project / "results").symlink_to(RESULTS)  # pretrained: results/<study>/<profile>/<run>/best.pt
    return project


@pytest.mark.skipif(not RESULTS.is_dir(), reason="no committed results")
def test_a_sample_of_every_committed_result_set_verifies(tmp_path, capsys):
    lines: list[str] = []
    report = verify_sample(RESULTS, SAMPLE, record=False, root_dir=data_root_project(tmp_path), log=lines.append)
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    assert {r.set_dir for r in report.sets} == set(result_sets(RESULTS))  # every committed profile is covered
    outcomes = [(s.set_dir, o) for s in report.sets for _, o in s.checked]
    failed = [f"{o.run_dir.relative_to(RESULTS)}: {o.status}: {o.detail}" for _, o in outcomes if o.status in (DIFFERS, MISSING)]
    assert not failed, "committed runs the current code no longer reproduces (rerun them with " \
                       "normtest run params/<study>.yml --profile <p> --runs-root results --rerun-stale):\n" + "\n".join(failed)
    legacy = [o for _, o in outcomes if o.status == NO_FINGERPRINT]
    assert all(o.detail.startswith("made before fingerprints existed") for o in legacy)
    unavailable = [f"{o.run_dir.relative_to(RESULTS)}: {o.detail}" for _, o in outcomes if o.status == UNAVAILABLE]
    if unavailable:
        pytest.skip("sampled runs cannot be recomputed here:\n" + "\n".join(unavailable))
