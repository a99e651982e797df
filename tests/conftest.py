import os, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT/'data/sample'
FULL = Path(os.environ.get('ALL_NB_FULL_DATA', ROOT.parent/'shared/data/taleqani-all'))
CLI = Path(sys.executable).parent/'all-nb'

@pytest.fixture(scope='session')
def full_data():
    "The full development set, or skip when this machine doesn't have it."
    if not FULL.is_dir(): pytest.skip(f'full dataset not found at {FULL}')
    return FULL

def run_cli(*args, cwd=None):
    "Run the installed `all-nb` console script; return the completed process."
    return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)
