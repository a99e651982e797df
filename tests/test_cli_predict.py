"`all-nb predict` and the run life cycle from the command line: model files, bad input, Ctrl-C and --resume."
import json, shutil, signal, time
from pathlib import Path
import numpy as np, pandas as pd
import pytest
from PIL import Image
from conftest import SAMPLE, run_cli, start_cli

TINY = ['--recipe', 'effnet-b3', '--arch', 'custom_cnn', '--size', 64, '--lr', 1e-3, '--from-scratch']

@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
    "A small run trained on the sample through the CLI."
    out = tmp_path_factory.mktemp('runs')/'tiny'
    p = run_cli('train', SAMPLE, *TINY, '--epochs', 2, '--out', out)
    assert p.returncode == 0, p.stderr
    return out

def test_run_has_both_model_formats(run_dir):
    meta = json.loads((run_dir/'model.json').read_text())
    assert (meta['arch'], meta['classes'], meta['size']) == ('custom_cnn', ['Benign', 'Early', 'Pre', 'Pro'], 64)
    assert (run_dir/'model.safetensors').stat().st_size > 0 and (run_dir/'export.pkl').stat().st_size > 0

def test_predict_folder_with_bad_files(run_dir, tmp_path):
    imgs = tmp_path/'imgs'
    shutil.copytree(SAMPLE/'Pre', imgs)
    (imgs/'zero.jpg').write_bytes(b'')
    (imgs/'truncated.jpg').write_bytes((SAMPLE/'Pre/WBC-Malignant-Pre-001.jpg').read_bytes()[:1500])
    (imgs/'notes.jpg').write_text('not an image')
    Image.open(SAMPLE/'Pre/WBC-Malignant-Pre-001.jpg').resize((4000, 4000)).save(imgs/'huge.png')
    Image.new('1', (20_000, 20_000)).save(imgs/'bomb.png')
    out = tmp_path/'out/preds.csv'
    p = run_cli('predict', run_dir, imgs, SAMPLE/'Benign/WBC-Benign-001.jpg', '--out', out)
    assert p.returncode == 0, p.stderr
    preds, skipped = pd.read_csv(out), pd.read_csv(out.parent/'preds.skipped.csv')
    assert len(preds) == 12 + 1 + 1 and 'huge.png' in ' '.join(preds.file)
    assert list(preds.columns) == ['file', 'predicted', 'confidence', 'refer', 'refer_reason', 'call', 'p_malignant',
                                   'prob_Benign', 'prob_Early', 'prob_Pre', 'prob_Pro']
    assert (preds.filter(like='prob_').sum(axis=1) - 1).abs().max() < 1e-4
    assert sorted(Path(f).name for f in skipped.file) == ['bomb.png', 'notes.jpg', 'truncated.jpg', 'zero.jpg']
    assert '14 images classified' in p.stdout and '4 skipped' in p.stdout
    again = run_cli('predict', run_dir, imgs, '--out', out)
    assert again.returncode == 2 and 'already exists; pass --overwrite' in again.stderr
    # a second prediction into the same folder keeps the first one's lists; --overwrite leaves no stale list
    second = run_cli('predict', run_dir, imgs, '--out', out.parent/'second.csv')
    assert second.returncode == 0 and (out.parent/'second.skipped.csv').is_file(), second.stderr
    clean = run_cli('predict', run_dir, SAMPLE/'Pro', '--out', out, '--overwrite')
    assert clean.returncode == 0 and not (out.parent/'preds.skipped.csv').exists() and (out.parent/'second.skipped.csv').is_file()

def test_predict_bad_input(run_dir, tmp_path):
    def err(*args):
        p = run_cli('predict', *args)
        assert p.returncode == 2 and len([l for l in p.stderr.splitlines() if l.startswith('all-nb')]) == 1, p.stderr
        return p.stderr
    assert 'no such file or folder' in err(run_dir, tmp_path/'missing', '--out', tmp_path/'a.csv')
    (tmp_path/'empty').mkdir()
    assert 'the folder is empty' in err(run_dir, tmp_path/'empty', '--out', tmp_path/'b.csv')
    assert 'no images given' in err(run_dir, '--out', tmp_path/'c.csv')
    assert 'no such model' in err(tmp_path/'nomodel', SAMPLE, '--out', tmp_path/'d.csv')
    assert 'pass --trust-pickle' in err(run_dir/'export.pkl', SAMPLE, '--out', tmp_path/'e.csv')
    assert 'not writable' in err(run_dir, SAMPLE, '--out', '/sys/preds.csv')
    assert 'is a folder; name the CSV file' in err(run_dir, SAMPLE, '--out', tmp_path, '--overwrite')
    other = tmp_path/'other'; other.mkdir()
    shutil.copy(run_dir/'model.safetensors', other)
    meta = json.loads((run_dir/'model.json').read_text())
    (other/'model.json').write_text(json.dumps(dict(meta, arch='deep_cnn')))
    assert "doesn't fit deep_cnn" in err(other, SAMPLE, '--out', tmp_path/'f.csv')
    (other/'model.json').write_text(json.dumps(dict(meta, model_kwargs=dict(size=64, checkpoint_path=str(run_dir/'model.pth')))))
    assert 'checkpoint_path is not an argument of any all_nb architecture' in err(other, SAMPLE, '--out', tmp_path/'f2.csv')
    (other/'model.json').write_text(json.dumps(dict(meta, classes=['Benign', 'Malignant'])))
    assert 'another architecture or class list' in err(other, SAMPLE, '--out', tmp_path/'g.csv')
    (other/'model.safetensors').write_bytes(b'\0' * 100)
    (other/'model.json').write_text(json.dumps(meta))
    assert 'corrupt weights file' in err(other, SAMPLE, '--out', tmp_path/'h.csv')

def test_predict_applies_the_calibration_fitted_on_validation(run_dir, tmp_path):
    cal = json.loads((run_dir/'model.json').read_text())['calibration']  # all-nb train evaluated the run, which fitted it
    assert cal['images'] == len(json.loads((run_dir/'split.json').read_text())['valid']['index']) and cal['temperature'] > 0
    p = run_cli('predict', run_dir, SAMPLE, '--out', tmp_path/'cal.csv')
    assert p.returncode == 0 and 'referred to a person' in p.stdout and 'benign/malignant call' in p.stdout, p.stderr
    preds = pd.read_csv(tmp_path/'cal.csv', keep_default_na=False)
    assert (preds.refer == (preds.confidence < cal['min_confidence'])).all()
    assert (preds.call == np.where(1 - preds.prob_Benign >= cal['threshold'], 'malignant', 'benign')).all()
    # the same weights without the calibration: other probabilities, the same classes, and the temperature maps one onto the other
    raw_dir = tmp_path/'raw'; raw_dir.mkdir()
    shutil.copy(run_dir/'model.safetensors', raw_dir)
    (raw_dir/'model.json').write_text(json.dumps({k: v for k, v in json.loads((run_dir/'model.json').read_text()).items() if k != 'calibration'}))
    p = run_cli('predict', raw_dir, SAMPLE, '--out', tmp_path/'raw.csv')
    assert p.returncode == 0 and 'no calibration in model.json' in p.stdout and 'referred to a person: none' in p.stdout, p.stderr
    raw = pd.read_csv(tmp_path/'raw.csv')
    from all_nb.trust import temper
    assert (raw.predicted == preds.predicted).all()
    assert np.abs(temper(raw.filter(like='prob_').to_numpy(), cal['temperature']) - preds.filter(like='prob_').to_numpy()).max() < .02
    everyone = run_cli('predict', run_dir, SAMPLE, '--min-confidence', 1, '--out', tmp_path/'all.csv')
    assert everyone.returncode == 0 and pd.read_csv(tmp_path/'all.csv').refer.all()
    bad = run_cli('predict', run_dir, SAMPLE, '--min-confidence', 1.5, '--out', tmp_path/'bad.csv')
    assert bad.returncode == 2 and bad.stderr.strip() == 'all-nb predict: error: --min-confidence 1.5: must be from 0 to 1' and not (tmp_path/'bad.csv').exists()

def test_trusted_pickle_predicts_like_the_safe_model(run_dir, tmp_path):
    safe = run_cli('predict', run_dir, SAMPLE/'Pro', '--out', tmp_path/'safe.csv')
    pkl = run_cli('predict', run_dir/'export.pkl', SAMPLE/'Pro', '--trust-pickle', '--out', tmp_path/'pkl.csv')
    assert safe.returncode == 0 and pkl.returncode == 0, pkl.stderr
    a, b = pd.read_csv(tmp_path/'safe.csv'), pd.read_csv(tmp_path/'pkl.csv')
    assert (a.file == b.file).all() and (a.filter(like='prob_') - b.filter(like='prob_')).abs().max().max() < 1e-3

def test_ctrl_c_keeps_the_best_model_and_resume_finishes(tmp_path):
    out = tmp_path/'run'
    proc = start_cli('train', SAMPLE, *TINY, '--epochs', 8, '--out', out)
    deadline = time.time() + 300
    while not (out/'model.pth').exists() and proc.poll() is None and time.time() < deadline: time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert 'of 8 epochs; the best model so far is kept in model.pth; continue with --resume' in stderr
    assert json.loads((out/'config.json').read_text())['status'] == 'interrupted' and (out/'model.pth').exists()
    done = len(pd.read_csv(out/'history.csv'))
    assert done < 8
    p = run_cli('train', SAMPLE, '--out', out, '--resume')
    assert p.returncode == 0, p.stderr
    assert len(pd.read_csv(out/'history.csv')) == 8
    assert json.loads((out/'config.json').read_text())['status'] == 'finished'
    assert run_cli('train', SAMPLE, '--out', out, '--resume').returncode == 2

def test_file_names_cannot_act_on_the_terminal(run_dir, tmp_path):
    imgs = tmp_path/'imgs'/'Pro'
    shutil.copytree(SAMPLE/'Pro', imgs)
    (imgs/'evil\x1b[2J.jpg').write_text('not an image')
    p = run_cli('predict', run_dir, imgs, '--out', tmp_path/'preds.csv')
    assert p.returncode == 0 and '\x1b' not in p.stdout + p.stderr and 'evil\\x1b[2J.jpg' in p.stdout, p.stdout
    p = run_cli('audit', tmp_path/'imgs', '--out', tmp_path/'audit')
    assert '\x1b' not in p.stdout + p.stderr and 'evil\\x1b[2J.jpg' in p.stdout + p.stderr, p.stdout + p.stderr

def test_a_class_with_no_readable_image_is_an_error(run_dir, tmp_path):
    data = tmp_path/'data'
    for c in ('Benign', 'Early', 'Pre'): shutil.copytree(SAMPLE/c, data/c)
    (data/'Pro').mkdir()
    (data/'Pro/a.jpg').write_bytes(b'')
    (data/'Pro/b.jpg').write_text('text renamed .jpg')
    p = run_cli('train', data, '--arch', 'custom_cnn', '--from-scratch', '--size', 64, '--epochs', 1, '--out', tmp_path/'run')
    assert p.returncode == 2 and 'class Pro has no readable image (2 unreadable: Pro/a.jpg' in p.stderr, p.stderr
    assert p.stderr.count('\n') == 1 and not (tmp_path/'run').exists() and 'or pass --drop-empty-classes' in p.stderr, p.stderr
    p = run_cli('train', data, '--arch', 'custom_cnn', '--from-scratch', '--size', 64, '--epochs', 1, '--drop-empty-classes', '--out', tmp_path/'three')
    assert p.returncode == 0 and 'class Pro has no readable image' in p.stderr and 'left out, as asked' in p.stderr, p.stderr
    assert json.loads((tmp_path/'three/model.json').read_text())['classes'] == ['Benign', 'Early', 'Pre']
    p = run_cli('audit', data, '--out', tmp_path/'audit')
    assert p.returncode == 0 and 'warning: Pro has no readable image' in p.stdout, p.stdout
    p = run_cli('predict', run_dir, data/'Pro', '--out', tmp_path/'pro.csv')
    assert p.returncode == 2 and 'none of the 2 files is a readable image' in p.stderr and not (tmp_path/'pro.csv').exists(), p.stderr
    assert len(pd.read_csv(tmp_path/'pro.skipped.csv')) == 2
    shutil.copy(SAMPLE/'Pro/WBC-Malignant-Pro-001.jpg', data/'Pro')  # one readable Pro image: a warning, then the next check
    p = run_cli('train', data, '--split', 'block', '--fold', 9, '--out', tmp_path/'run')
    assert p.returncode == 2 and p.stderr.splitlines()[0] == ('all-nb train: warning: skipped 2 unreadable file(s): Pro/a.jpg: empty '
                                                              'file (0 bytes); Pro/b.jpg: not an image (unrecognised content)'), p.stderr
    assert p.stderr.count('\n') == 2 and 'fold' in p.stderr.splitlines()[1]  # the warning once, as one line without source code

def test_report_to_share_leaves_out_absolute_paths(run_dir, tmp_path):
    shared = tmp_path/'shared'
    shutil.copytree(run_dir, shared)
    p = run_cli('report', shared, '--overwrite', '--hide-paths', '--no-gradcam')
    assert p.returncode == 0, p.stderr
    page = (shared/'report.html').read_text()
    assert str(shared.resolve()) not in page and str(SAMPLE.resolve()) not in page and str(tmp_path) not in page
    assert shared.name in page and 'Is it reading the cell?' in page

def test_tta_is_chosen_at_training_and_used_by_evaluate_and_predict(tmp_path):
    out = tmp_path/'tta'
    p = run_cli('train', SAMPLE, *TINY, '--epochs', 1, '--tta', '--out', out)
    assert p.returncode == 0, p.stderr
    assert json.loads((out/'config.json').read_text())['recipe']['tta'] and json.loads((out/'model.json').read_text())['tta']
    assert json.loads((out/'evaluation.json').read_text())['tta']
    p = run_cli('predict', out, SAMPLE/'Pro', '--out', tmp_path/'p.csv')
    assert p.returncode == 0 and 'each averaged over its 8 flips and quarter turns' in p.stdout, p.stdout + p.stderr
    p = run_cli('predict', out/'export.pkl', SAMPLE/'Pro', '--trust-pickle', '--out', tmp_path/'pkl.csv')
    assert p.returncode == 0 and 'each averaged over its 8 flips and quarter turns' in p.stdout, p.stdout + p.stderr
    a, b = pd.read_csv(tmp_path/'p.csv'), pd.read_csv(tmp_path/'pkl.csv')
    assert (a.filter(like='prob_') - b.filter(like='prob_')).abs().max().max() < 1e-3  # the pickle predicts as the run does
