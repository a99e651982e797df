"`all-nb audit` as a user runs it: real files, real console script, every kind of bad input."
import json, os, shutil
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from conftest import SAMPLE, run_cli

def error_line(p):
    "The one stderr line of a failed command (warnings from libraries aside)."
    lines = [l for l in p.stderr.splitlines() if l.startswith('all-nb')]
    assert p.returncode == 2 and len(lines) == 1, (p.returncode, p.stderr)
    return lines[0]

def test_audit_sample_writes_results(tmp_path):
    p = run_cli('audit', SAMPLE, '--out', tmp_path/'out')
    assert p.returncode == 0, p.stderr
    assert '49 readable images of 49 files: Benign 12, Early 12, Pre 12, Pro 13' in p.stdout
    s = json.loads((tmp_path/'out/audit.json').read_text())
    assert s['exact_duplicate_pairs'] == 1 and s['near_pairs'][0][:2] == ['Pro/WBC-Malignant-Pro-011.jpg', 'Pro/WBC-Malignant-Pro-012.jpg']
    assert (tmp_path/'out/audit.png').read_bytes()[:4] == b'\x89PNG'
    assert len((tmp_path/'out/audit.csv').read_text().splitlines()) == 50

def test_existing_results_are_kept(tmp_path):
    assert run_cli('audit', SAMPLE, '--out', tmp_path).returncode == 0
    before = {f.name: f.read_bytes() for f in tmp_path.iterdir()}
    assert 'already exists; pass --overwrite' in error_line(run_cli('audit', SAMPLE, '--out', tmp_path))
    assert {f.name: f.read_bytes() for f in tmp_path.iterdir()} == before

@pytest.mark.parametrize('make, message', [
    (lambda d: d/'missing', 'no such folder'),
    (lambda d: (d/'f.txt').write_text('x') and d/'f.txt', 'is a file, not a folder'),
    (lambda d: d, 'no class folder found'),
    (lambda d: [(d/n).mkdir() for n in ('cats', 'dogs')] and d, 'no class folder found'),
    (lambda d: [(d/n).mkdir() for n in ('Benign', 'Pro')] and d, 'the class folders hold no files'),
])
def test_bad_folders_get_one_line(tmp_path, make, message):
    root = make(tmp_path)
    line = error_line(run_cli('audit', root, '--out', tmp_path/'out'))
    assert message in line and str(root) in line, line

def test_bad_files_are_listed_and_the_rest_audited(tmp_path):
    root = tmp_path/'data'
    shutil.copytree(SAMPLE, root)
    raw = (root/'Pre/WBC-Malignant-Pre-001.jpg').read_bytes()
    (root/'Pre/zero.jpg').write_bytes(b'')
    (root/'Pre/truncated.jpg').write_bytes(raw[:3000])
    (root/'Early/fake.png').write_text('<html>')
    grey = np.asarray(Image.open(root/'Pre/WBC-Malignant-Pre-001.jpg').convert('L'), dtype=np.uint16) * 257
    Image.fromarray(grey).save(root/'Benign/deep16.png')
    Image.open(root/'Benign/WBC-Benign-001.jpg').convert('RGBA').save(root/'Benign/alpha.png')
    p = run_cli('audit', root, '--out', tmp_path/'out')
    assert p.returncode == 0, p.stderr
    s = json.loads((tmp_path/'out/audit.json').read_text())
    assert s['class_counts'] == {'Benign': 14, 'Early': 12, 'Pre': 12, 'Pro': 13}
    assert {u['file']: u['problem'].split(' (')[0] for u in s['unreadable']} == {
        'Early/fake.png': 'not an image', 'Pre/truncated.jpg': 'corrupt or truncated', 'Pre/zero.jpg': 'empty file'}
    assert 'unreadable: Pre/zero.jpg: empty file (0 bytes)' in p.stdout

def test_decompression_bomb_is_refused(tmp_path):
    (tmp_path/'Pro').mkdir()
    Image.new('1', (12_000, 12_000)).save(tmp_path/'Pro/huge.png')
    p = run_cli('audit', tmp_path, '--out', tmp_path/'out')
    assert p.returncode == 0, p.stderr
    assert '(12000x12000 pixels), refused as a possible decompression bomb' in json.loads((tmp_path/'out/audit.json').read_text())['unreadable'][0]['problem']

def test_unwritable_output(tmp_path):
    "An existing folder that can't be written (sysfs refuses new files even to root)."
    assert 'the output folder is not writable' in error_line(run_cli('audit', SAMPLE, '--out', '/sys'))

def test_output_under_a_file(tmp_path):
    (tmp_path/'f').write_text('x')
    assert "can't create the output folder" in error_line(run_cli('audit', SAMPLE, '--out', tmp_path/'f/out'))

def test_kaggle_layout_and_help(tmp_path):
    shutil.copytree(SAMPLE/'Pro', tmp_path/'Original/[Malignant] Pro-B')
    shutil.copytree(SAMPLE/'Benign', tmp_path/'Segmented/Benign')
    p = run_cli('audit', tmp_path, '--out', tmp_path/'out')
    assert p.returncode == 0 and '13 readable images of 13 files' in p.stdout, p.stderr
    h = run_cli('audit', '--help')
    assert h.returncode == 0 and '--threshold' in h.stdout and 'near-duplicate' in h.stdout
