"The run report in a real browser: it opens from disk, and a confusion-matrix cell shows exactly its images."
import json, os
from pathlib import Path
import pytest
from conftest import ROOT, SAMPLE, CHROMIUM, needs_chromium

pytestmark = needs_chromium

@pytest.fixture(scope='module')
def report(run_copy):
    from all_nb.report import write_report
    return write_report(run_copy), json.loads((run_copy/'evaluation.json').read_text())

def test_off_diagonal_cell_shows_exactly_its_images(report):
    from playwright.sync_api import sync_playwright
    page_file, ev = report
    wrong = [(p['label'], p['predicted']) for p in ev['predictions'] if p['label'] != p['predicted']]
    assert wrong, 'the tiny model should make mistakes on the sample'
    true, pred = max(set(wrong), key=wrong.count)
    expected = sorted(p['file'] for p in ev['predictions'] if (p['label'], p['predicted']) == (true, pred))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=['--no-sandbox', '--disable-background-networking', '--disable-gpu'])
        try:
            page = browser.new_page(viewport={'width': 1300, 'height': 1000})
            requests = []
            page.on('request', lambda r: requests.append(r.url) if not r.url.startswith(('file:', 'data:')) else None)
            page.goto(page_file.as_uri())
            assert page.locator('.card:visible').count() == 0
            page.click(f"td.cell[data-true='{true}'][data-pred='{pred}']")
            shown = sorted(page.locator('.card:visible').evaluate_all('cs => cs.map(c => c.dataset.file)'))
            assert shown == expected
            assert page.locator('.card:visible img[alt="Grad-CAM"]').count() == len(expected)
            assert f'{len(expected)} image' in page.inner_text('#selection')
            for section in ('Run', 'Metrics, beside the colour-only baseline', 'Confusion matrix', 'Plots'):
                assert page.locator('h2', has_text=section).count() == 1
            assert page.locator('.plots img').count() >= 3
            (ROOT/'tests/artifacts').mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT/'tests/artifacts/report.png'), full_page=True)
            assert requests == [], requests
        finally: browser.close()
