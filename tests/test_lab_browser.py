"The inspector notebook in a real JupyterLab, driven by Chromium: it runs, shows the mistake browser, and Next changes the image shown."
import json, os, re, secrets, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest
from conftest import ROOT, SAMPLE, CHROMIUM, needs_chromium

pytestmark = needs_chromium
playwright = pytest.importorskip('playwright.sync_api', reason='playwright not installed; pip install playwright')
NOTEBOOK = 'nbs/04a_inspector.ipynb'
ARTIFACTS = ROOT/'tests/artifacts'

def free_port()->int:
    "A TCP port on the loopback interface that nothing listens on now."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def wait_for_server(proc, url:str, log:Path, timeout:float=90):
    "Return once `url` answers; fail with the server's log if it exits or `timeout` seconds pass."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None: pytest.fail(f'jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}')
        try:
            with urllib.request.urlopen(url, timeout=5): return
        except OSError: time.sleep(0.5)
    pytest.fail(f'jupyter lab did not answer within {timeout} s:\n{log.read_text()[-3000:]}')

def stop_kernels(base:str, token:str):
    "Ask the server to shut its kernels down: they run in sessions of their own, which a signal to the server misses."
    try:
        with urllib.request.urlopen(f'{base}/api/kernels?token={token}', timeout=10) as answer: kernels = json.load(answer)
        for kernel in kernels:
            request = urllib.request.Request(f"{base}/api/kernels/{kernel['id']}?token={token}", method='DELETE')
            urllib.request.urlopen(request, timeout=30).close()
    except OSError: pass # the server is gone already, and it ended its kernels on the way out

@pytest.fixture
def lab(tmp_path):
    "A JupyterLab server on a copy of the inspector notebook and the sample; yields (base url, token). Always stopped."
    (tmp_path/'nbs').mkdir()
    shutil.copy(ROOT/NOTEBOOK, tmp_path/NOTEBOOK)
    shutil.copytree(SAMPLE, tmp_path/'data/sample')
    home = tmp_path/'home'
    notifications = home/'settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings'
    notifications.parent.mkdir(parents=True)
    notifications.write_text(json.dumps(dict(fetchNews='false', checkForUpdates=False))) # no news pop-up over the widget
    env = dict(os.environ, HF_HUB_OFFLINE='1', JUPYTER_CONFIG_DIR=str(home/'config'), JUPYTER_DATA_DIR=str(home/'data'),
               JUPYTER_RUNTIME_DIR=str(home/'runtime'), JUPYTERLAB_SETTINGS_DIR=str(home/'settings'),
               JUPYTERLAB_WORKSPACES_DIR=str(home/'workspaces'), IPYTHONDIR=str(home/'ipython'))
    port, token, log = free_port(), secrets.token_hex(16), tmp_path/'jupyter.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--allow-root', '--no-browser', '--ip', '127.0.0.1',
                                 '--port', str(port), '--ServerApp.port_retries=0', f'--ServerApp.token={token}',
                                 '--notebook-dir', str(tmp_path)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=tmp_path)
    base = f'http://127.0.0.1:{port}'
    try:
        wait_for_server(proc, f'{base}/api/status?token={token}', log)
        yield base, token
    finally:
        stop_kernels(base, token)
        proc.terminate()
        try: proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

def wait_for_kernel(page, base:str, token:str, timeout:float=120):
    "Wait until the notebook's kernel is started and idle, accepting JupyterLab's 'Select Kernel' dialog if it asks."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dialog = page.locator('.jp-Dialog')
        if dialog.is_visible(): dialog.locator('button.jp-mod-accept').click() # the notebook's own Python 3 is preselected
        with urllib.request.urlopen(f'{base}/api/sessions?token={token}', timeout=10) as answer: sessions = json.load(answer)
        states = [s['kernel']['execution_state'] for s in sessions if s['path'].endswith(NOTEBOOK) and s.get('kernel')]
        if states == ['idle']: return
        time.sleep(0.5)
    pytest.fail(f'the kernel of {NOTEBOOK} was not idle within {timeout} s')

def run_all_cells(page, attempts:int=3):
    "Run > Run All Cells; again if the first code cell was not queued (a click while the kernel still connects is lost)."
    first_prompt = page.locator('.jp-CodeCell .jp-InputArea-prompt').first
    for _ in range(attempts):
        page.locator('#jp-MainMenu').get_by_role('menuitem', name='Run', exact=True).click()
        page.get_by_role('menuitem', name='Run All Cells', exact=True).click()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if first_prompt.inner_text().strip() not in ('[ ]:', ''): return
            time.sleep(0.5)
    pytest.fail(f'Run All Cells did not start the notebook in {attempts} attempts')

def test_inspector_notebook_in_jupyterlab(lab):
    expect, base, token = playwright.expect, *lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=['--no-sandbox', '--disable-background-networking', '--disable-gpu'])
        page = browser.new_page(viewport={'width': 1400, 'height': 1400})
        page.set_default_timeout(60_000)
        try:
            page.goto(f'{base}/lab/tree/{NOTEBOOK}?token={token}', timeout=120_000)
            expect(page.locator('.jp-Notebook')).to_be_visible(timeout=120_000)
            wait_for_kernel(page, base, token)
            run_all_cells(page)
            shown = page.locator('.all-nb-path')
            expect(shown).to_contain_text('data/sample/', timeout=180_000) # training the tiny run, then the widget
            page.locator('.widget-dropdown', has_text='predicted').locator('select').select_option(label='any')
            position = page.locator('.widget-label', has_text='selected')
            expect(position).to_have_text(re.compile(r'1 of (\d+) selected \(\1 images in all\)'), timeout=60_000)
            first = shown.inner_text()
            page.locator('.widget-button', has_text='Next').click()
            expect(shown).not_to_have_text(first, timeout=60_000)
            expect(shown).to_contain_text('data/sample/')
            widget = page.locator('.jp-OutputArea-output', has=shown)
            expect(widget.locator('.widget-image')).to_be_visible()
            widget.screenshot(path=str(ARTIFACTS/'lab_browser.png'))
        except Exception:
            page.screenshot(path=str(ARTIFACTS/'lab_browser_failure.png'), full_page=True)
            raise
        finally: browser.close()
