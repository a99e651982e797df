"The mistake browser on a real run directory: its selections match the model's own predictions, it steps, flags round-trip, and no image is touched."
import os, re
import numpy as np, pandas as pd, pytest, torch
from conftest import SAMPLE

from all_nb.core import AllNbError
from all_nb.data import CLASSES
from all_nb.train import CPUMixedPrecision
from all_nb.interpret import MistakeBrowser, grad_cam, model_input, load_flags

@pytest.fixture(scope='module')
def run_dir(run_copy):
    "A tiny real run on the sample (`train.tiny_run`): a from-scratch CNN, 2 epochs at 64 pixels."
    return run_copy

def files_state(folder):
    "Every file under `folder` with its size and modification time."
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob('*')) if p.is_file()}

def expected_predictions(learn):
    "True and predicted class and loss of each test image, from fastai's `get_preds` in float32."
    mixed = [cb for cb in learn.cbs if isinstance(cb, CPUMixedPrecision)]
    with learn.removed_cbs(mixed), learn.no_bar(): probs, targets, losses = learn.get_preds(dl=learn.dls[2], with_loss=True)
    return pd.DataFrame(dict(path=learn.dls[2].items.path.to_numpy(), actual=np.array(CLASSES)[targets.numpy()],
                             predicted=np.array(CLASSES)[probs.argmax(1).numpy()], loss=losses.numpy()))

def test_browser_on_a_run_dir(run_dir):
    before = files_state(SAMPLE)
    browser = MistakeBrowser(run_dir)
    assert browser.flags_csv == run_dir/'flags.csv' and browser.flags == {}
    expected = expected_predictions(browser.learn)
    wrong = expected[expected.actual != expected.predicted].sort_values('loss', ascending=False, kind='stable')
    assert browser.selection.path.tolist() == wrong.path.tolist()
    for actual in ['any', *CLASSES]:
        for predicted in ['any', 'wrong', *CLASSES]:
            browser.select(actual, predicted)
            keep = (expected.actual == actual) | (actual == 'any')
            keep &= (expected.predicted != expected.actual) if predicted == 'wrong' else (expected.predicted == predicted) | (predicted == 'any')
            assert sorted(browser.selection.path) == sorted(expected.path[keep]), (actual, predicted)
    browser.select('any', 'any', 'confidence')
    assert browser.selection.confidence.is_monotonic_decreasing and len(browser.selection) == len(expected)

    shown = [browser.path_label.value]
    for _ in range(len(expected)): # the last click, past the end, stays on the last image
        browser.next_button.click()
        shown.append(browser.path_label.value)
    assert shown[:-1] == browser.selection.path.tolist() and shown[-1] == shown[-2]
    assert browser.next_button.disabled and not browser.prev_button.disabled
    browser.prev_button.click()
    assert browser.path_label.value == shown[-3]

    x = model_input(browser.dl, 0)
    cam = grad_cam(browser.learn.model, x, CLASSES.index(browser.table.predicted[0]))
    assert cam.shape == (64, 64) and cam.max() - cam.min() > 0.5

    browser.flag('label suspect')
    browser.prev()
    browser.flag_buttons.value = 'duplicate'
    browser.next(); browser.next()
    browser.flag('fine'); browser.flag('') # cleared again
    flags = {shown[-3]: 'label suspect', shown[-4]: 'duplicate'}
    assert browser.flags == flags
    assert not (run_dir/'flags.csv').exists() # nothing written before the export
    browser.export_button.click()
    saved = pd.read_csv(run_dir/'flags.csv')
    assert dict(zip(saved.path, saved.flag)) == flags
    assert set(saved.actual) <= set(CLASSES) and saved.loss.notna().all()
    again = MistakeBrowser(run_dir)
    assert again.flags == flags == load_flags(run_dir/'flags.csv')
    again.select('any', 'any', 'loss')
    while again.path_label.value != shown[-3]: again.next()
    assert again.flag_buttons.value == 'label suspect'
    assert files_state(SAMPLE) == before # no image moved, renamed, deleted or rewritten

def test_browser_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(AllNbError, match=re.escape(str(tmp_path))): MistakeBrowser(tmp_path)
