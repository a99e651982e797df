import os, shutil, signal, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT/'data/sample'
FULL = Path(os.environ.get('ALL_NB_FULL_DATA', ROOT.parent/'shared/data/taleqani-all'))
CLI = Path(sys.executable).parent/'all-nb'
CHROMIUM = Path('/usr/bin/chromium')
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f'{CHROMIUM} not found; install Debian chromium (apt-get install -y chromium; .ci/run does)')
os.environ['HF_HUB_OFFLINE'] = '1'  # the tests never wait on a model hub

@pytest.fixture(scope='session')
def full_data():
    "The full development set, or skip when this machine doesn't have it."
    if not FULL.is_dir(): pytest.skip(f'full dataset not found at {FULL}')
    return FULL

@pytest.fixture(scope='session')
def trained_run(tmp_path_factory):
    "One tiny real run (`train.tiny_run`), trained once for the whole session; copy it with `run_copy` before writing into it."
    from all_nb.train import tiny_run
    return tiny_run(tmp_path_factory.mktemp('session')/'run').dir

@pytest.fixture(scope='module')
def run_copy(trained_run, tmp_path_factory):
    "A copy of the session's tiny run that this test module may write into."
    return Path(shutil.copytree(trained_run, tmp_path_factory.mktemp('copy')/'run'))

def start_cli(*args):
    """Start the `all-nb` console script in the background, Ctrl-C enabled even where this test run was started with it ignored
    (a background job of a script inherits SIGINT ignored, and Python then never raises KeyboardInterrupt)."""
    return subprocess.Popen([str(CLI), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

def run_cli(*args, cwd=None):
    "Run the installed `all-nb` console script; return the completed process."
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)
