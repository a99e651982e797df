"The colour-only baseline on the full development set (skipped where it isn't on disk), and a whole evaluation of a tiny real run."
import json, os
import pandas as pd
import pytest
from conftest import SAMPLE

from all_nb.core import AllNbError
from all_nb.data import load_items
from all_nb.evaluate import EVAL_FILES, SUMMARY_SCOPES, SWEEPS, colour_cv, evaluate_run

@pytest.fixture(scope='module')
def full_items(full_data): return load_items(full_data, progress=False)

def test_colour_baseline_random_folds(full_items):
    "Colour alone under random 5-fold CV: measured 0.9795 mean accuracy, folds 0.974 to 0.983."
    cv = colour_cv(full_items, 'random')
    assert cv.accuracy.mean() >= 0.96 and cv.accuracy.min() >= 0.95, cv

def test_colour_baseline_block_folds(full_items):
    "Block folds keep pseudo-patients together and cost colour a little: measured 0.9563 mean, folds 0.908 to 0.979."
    cv = colour_cv(full_items, 'block')
    assert 0.90 <= cv.accuracy.mean() <= 0.975, cv
    assert cv.accuracy.mean() < colour_cv(full_items, 'random').accuracy.mean()

@pytest.fixture(scope='module')
def tiny_run(run_copy): return run_copy

def test_evaluate_run_end_to_end(tiny_run):
    ev = evaluate_run(tiny_run, n_boot=300)
    assert json.loads((tiny_run/'evaluation.json').read_text()) == ev
    assert all((tiny_run/f).stat().st_size > 0 for f in EVAL_FILES)
    metrics = pd.DataFrame(ev['metrics']).astype({'lo': float, 'hi': float})
    with_interval = metrics.dropna(subset=['lo', 'hi'])
    assert ((with_interval.lo <= with_interval.value) & (with_interval.value <= with_interval.hi)).all()
    assert set(metrics.scope) == {'overall', 'macro', 'weighted', 'benign vs malignant', *ev['classes']}
    preds = pd.DataFrame(ev['predictions'])
    assert len(preds) == ev['test_images'] == sum(map(sum, ev['confusion']['counts']))
    accuracy = metrics.set_index(['metric', 'scope']).value['accuracy', 'overall']
    assert accuracy == (preds.label == preds.predicted).mean()
    comparison = pd.DataFrame(ev['comparison'])
    assert {'model', 'colour baseline', 'colour baseline lo', 'model, by pseudo-patient lo', 'model note'} <= set(comparison.columns)
    by_patient = pd.DataFrame(ev['metrics_by_patient']).set_index(['metric', 'scope'])
    assert (by_patient.value == metrics.set_index(['metric', 'scope']).value).all()  # same estimates, other intervals
    # the sample's 8 test images are too few for an interval, and come from fewer than 5 pseudo-patients: a note says so instead
    assert by_patient.loc[('accuracy', 'overall'), 'note'] == metrics.set_index(['metric', 'scope']).note['accuracy', 'overall'] == 'only 8 images: too few for an interval'
    assert pd.isna(by_patient.loc[('accuracy', 'overall'), 'lo'])
    assert set(comparison.scope) == set(SUMMARY_SCOPES)

def test_evaluation_sweeps_and_refusal(tiny_run):
    if not (tiny_run/'evaluation.json').exists(): evaluate_run(tiny_run, n_boot=300)
    ev = json.loads((tiny_run/'evaluation.json').read_text())
    sweep, metrics = pd.DataFrame(ev['robustness']), pd.DataFrame(ev['metrics']).set_index(['metric', 'scope']).value
    assert list(sweep.perturbation.unique()) == list(SWEEPS)
    assert len(sweep) == sum(map(len, SWEEPS.values())) * metrics.index.get_level_values('scope').isin(SUMMARY_SCOPES).sum()
    for kind, level in (('noise per pixel', 0), ('noise per channel', 0), ('hue shift', 0), ('saturation', 1)):
        rows = sweep[(sweep.perturbation == kind) & (sweep.level == level)].set_index(['metric', 'scope']).value
        assert rows.fillna(-1).equals(metrics[rows.index].fillna(-1))
    before = (tiny_run/'evaluation.json').read_bytes()
    with pytest.raises(AllNbError, match='an earlier evaluation is there; pass --overwrite'): evaluate_run(tiny_run)
    assert (tiny_run/'evaluation.json').read_bytes() == before
