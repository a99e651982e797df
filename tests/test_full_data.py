"The audit and the splits on the full development set (skipped where it isn't on disk)."
import pytest
from all_nb.data import audit, audit_summary, make_split, kfold, fold_split, check_split, cut_groups, SPLIT_KINDS
from conftest import run_cli

@pytest.fixture(scope='module')
def full_audit(full_data): return audit(full_data, progress=False)

@pytest.fixture(scope='module')
def full_items(full_audit): return full_audit[full_audit.ok].reset_index(drop=True)

def test_counts_and_duplicates(full_audit):
    s = audit_summary(full_audit)
    assert s['class_counts'] == {'Benign': 413, 'Early': 812, 'Pre': 787, 'Pro': 665}
    assert (s['exact_duplicate_pairs'], s['near_duplicate_pairs'], s['label_conflicts']) == (37, 85, [])
    exact = full_audit[full_audit.exact_dup]
    assert len(exact) == 74 and (exact.groupby('md5').dup_group.nunique() == 1).all()
    assert set(exact.label) == {'Pro'}

@pytest.mark.parametrize('kind', ['grouped', 'block'])
def test_leakage_aware_splits(full_items, kind):
    for seed in (0, 1):
        check_split(full_items, make_split(full_items, kind, seed=seed), tol=0.02)
        folds = kfold(full_items, kind, n_folds=5, seed=seed)
        for k in range(5): check_split(full_items, fold_split(folds, k), tol=0.02)

def test_random_split_cuts_duplicate_groups(full_items):
    "The control: a random image-level split puts near-twins on both sides, which is why it inflates accuracy."
    split = make_split(full_items, 'random')
    check_split(full_items, split, tol=0.02, whole_groups=False)
    assert len(cut_groups(full_items, split)) > 10

def test_block_folds_are_contiguous(full_items):
    folds = kfold(full_items, 'block', seed=0)
    for c, rows in full_items.assign(fold=folds).groupby('label'):
        changes = (rows.sort_values('number').fold.diff().fillna(0) != 0).sum()
        assert changes <= 5 + 2 * rows.dup_group.duplicated().sum(), (c, changes)

def test_cli_on_full_data(full_data, tmp_path):
    p = run_cli('audit', full_data, '--out', tmp_path)
    assert p.returncode == 0, p.stderr
    assert '2677 readable images of 2677 files: Benign 413, Early 812, Pre 787, Pro 665' in p.stdout
    assert '37 byte-identical pairs, 85 near-duplicate pairs' in p.stdout
