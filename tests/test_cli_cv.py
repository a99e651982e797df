"`all-nb cv` end to end on the sample: Ctrl-C in the middle of a fold, the same command again to finish, every image tested once; then a model to deploy that carries the CV's estimate."
import json, signal, time
import numpy as np, pandas as pd
from conftest import SAMPLE, run_cli, start_cli

TINY = ['--arch', 'custom_cnn', '--from-scratch', '--size', 64, '--lr', 1e-3, '--epochs', 3, '--split', 'block',
        '--folds', 3, '--no-gradcam', '--n-boot', 100]

def test_cv_interrupted_and_resumed(tmp_path):
    out = tmp_path/'cv'
    proc = start_cli('cv', SAMPLE, *TINY, '--out', out)
    deadline = time.time() + 300
    while not (out/'fold1/model.pth').exists() and proc.poll() is None and time.time() < deadline: time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    errors = [l for l in stderr.splitlines() if l.startswith('all-nb')]  # beside the plain epoch lines a log gets
    assert len(errors) == 1 and 'interrupted in fold 1' in errors[0] and 'run the same command again' in errors[0], stderr
    assert 'Traceback' not in stderr and stderr.splitlines()[0].startswith('epoch 1 of 3:')
    assert 'fold 1 of 3' in stdout and (out/'fold0/result.json').exists() and not (out/'fold1/result.json').exists()
    fold0 = (out/'fold0/model.pth').stat().st_mtime_ns

    p = run_cli('cv', SAMPLE, *TINY, '--out', out)
    assert p.returncode == 0, p.stderr
    assert 'fold 3 of 3' in p.stdout and 'above the colour baseline on' in p.stdout and 'two fold models on images neither trained on' in p.stdout
    assert (out/'fold0/model.pth').stat().st_mtime_ns == fold0  # the finished fold is read back, not trained again
    cv = json.loads((out/'cv.json').read_text())
    assert cv['status'] == 'finished' and [f['fold'] for f in cv['folds']] == [0, 1, 2]
    oof = pd.read_csv(out/'oof.csv')
    assert len(oof) == 49 == oof.file.nunique() and set(oof.fold) == {0, 1, 2}
    assert sum(f['errors'] for f in cv['folds']) == (oof.label != oof.predicted).sum() == cv['summary']['errors']
    page = (out/'report.html').read_text()
    assert page.count("class='card") == 49 and all(f'fold{k}/report.html' in page for k in range(3))

    # a model to deploy: trained on every image with the CV's settings, the CV's estimate in its model.json
    same = ['--arch', 'custom_cnn', '--from-scratch', '--size', 64, '--lr', 1e-3, '--split', 'none', '--cv', out]
    p = run_cli('train', SAMPLE, *same, '--epochs', 3, '--out', tmp_path/'final')
    assert p.returncode == 0 and 'trained on all 49 images' in p.stdout, p.stderr
    card = json.loads((tmp_path/'final/model.json').read_text())
    assert (card['estimate']['cv'], card['estimate']['folds'], card['estimate']['split']) == (str(out.resolve()), 3, 'block')
    assert card['estimate']['accuracy']['mean'] == cv['summary']['metrics']['accuracy']['mean'] and card['corner_mask'] == .18
    # it has no validation split: it decides with the folds' median temperature, threshold and minimum confidence
    for k in ('temperature', 'threshold', 'min_confidence'):
        assert card['calibration'][k] == np.median([f['calibration'][k] for f in cv['folds']])
    assert len(json.loads((tmp_path/'final/split.json').read_text())['train']['index']) == 49
    p = run_cli('train', SAMPLE, *same, '--epochs', 5, '--out', tmp_path/'other')
    assert p.returncode == 2 and 'epochs 5 here, 3 there' in p.stderr and not (tmp_path/'other').exists(), p.stderr
    p = run_cli('evaluate', tmp_path/'final')
    assert p.returncode == 2 and 'split none' in p.stderr and p.stderr.count('\n') == 1, p.stderr

    # the CV folder predicts as the mean of its fold models, flags their disagreements and refers them
    p = run_cli('predict', out, SAMPLE/'Pro', SAMPLE/'Benign', '--out', tmp_path/'mean.csv')
    assert p.returncode == 0 and 'by the mean of 3 models' in p.stdout, p.stderr
    mean = pd.read_csv(tmp_path/'mean.csv')
    each = []
    for k in range(3):
        assert run_cli('predict', out/f'fold{k}', SAMPLE/'Pro', SAMPLE/'Benign', '--out', tmp_path/f'fold{k}.csv').returncode == 0
        each.append(pd.read_csv(tmp_path/f'fold{k}.csv').filter(like='prob_').to_numpy())
    assert np.abs(mean.filter(like='prob_').to_numpy() - np.mean(each, 0)).max() < 1e-5
    agreement = (np.stack([e.argmax(1) for e in each]) == mean.filter(like='prob_').to_numpy().argmax(1)).mean(0)
    assert np.allclose(mean.agreement, agreement) and mean.refer[mean.agreement < 1].all()
    assert all('the models disagree' in r for r in mean.refer_reason[mean.agreement < 1])

    # the audit of the same folder, with what the cross-validation found about it
    p = run_cli('audit', SAMPLE, '--model', out, '--out', tmp_path/'audit')
    assert p.returncode == 0 and 'likely label errors' in p.stdout and p.stdout.count('probe: ') == 3, p.stdout
    assert pd.read_csv(tmp_path/'audit/label_issues.csv').file.nunique() == 49 and (tmp_path/'audit/probes.json').exists()
    p = run_cli('audit', SAMPLE, '--model', tmp_path/'mean.csv', '--out', tmp_path/'audit2')
    assert p.returncode == 2 and '--model ' in p.stderr and 'neither an all-nb cv folder' in p.stderr and not (tmp_path/'audit2').exists(), p.stderr

    # test-time augmentation switched on for the finished CV: its fold models are scored again, not trained again
    p = run_cli('cv', SAMPLE, *TINY, '--tta', '--out', out)
    assert p.returncode == 0 and 'fold 3 of 3' in p.stdout, p.stderr
    assert (out/'fold0/model.pth').stat().st_mtime_ns == fold0
    assert all(json.loads((out/f'fold{k}/model.json').read_text())['tta'] for k in range(3))
    views = json.loads((out/'cv.json').read_text())
    assert views['status'] == 'finished' and views['settings']['tta'] is True and len(pd.read_csv(out/'oof.csv')) == 49
    p = run_cli('predict', out, SAMPLE/'Pro', '--out', tmp_path/'views.csv')
    assert p.returncode == 0 and 'by the mean of 3 models, each averaged over its 8 flips and quarter turns' in p.stdout, p.stdout + p.stderr
    p = run_cli('train', SAMPLE, *same, '--epochs', 3, '--out', tmp_path/'final-views')  # a model to deploy predicts as its CV was scored
    assert p.returncode == 0 and json.loads((tmp_path/'final-views/model.json').read_text())['tta'], p.stderr

def test_cv_bad_input_fails_before_work(tmp_path):
    p = run_cli('cv', SAMPLE, '--folds', 2, '--out', tmp_path/'cv')
    assert p.returncode == 2 and 'at least 3 folds' in p.stderr and p.stderr.count('\n') == 1, p.stderr
    assert not (tmp_path/'cv').exists()
    p = run_cli('cv', SAMPLE, '--split', 'patient', '--out', tmp_path/'cv')
    assert p.returncode == 2 and "unknown split 'patient'" in p.stderr and not (tmp_path/'cv').exists()
    for bad, says in (('0,x', 'give fold numbers separated by commas'), ('5', 'there are 5 folds, numbered 0 to 4')):
        p = run_cli('cv', SAMPLE, '--test-folds', bad, '--out', tmp_path/'cv')
        assert p.returncode == 2 and f'--test-folds {bad}: {says}' in p.stderr and not (tmp_path/'cv').exists(), p.stderr
