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
            page.click('.card:visible img[alt="Grad-CAM"] >> nth=0')  # a picture enlarges, with the colour scale explained on the page
            assert page.locator('#lightbox').is_visible() and 'Grad-CAM' in page.inner_text('#lightbox')
            page.keyboard.press('Escape')
            assert not page.locator('#lightbox').is_visible() and 'Grad-CAM colours' in page.inner_text('body')
            assert page.locator('.card:visible figcaption', has_text='Grad-CAM for').count() == len(expected)
            for section in ('Run', 'Metrics, beside the colour-only baseline', 'Can I trust a single prediction?', 'Is it reading the cell?', 'Confusion matrix', 'Plots'):
                assert page.locator('h2', has_text=section).count() == 1
            assert page.locator('.plots img').count() >= 3
            trust = page.inner_text('table.metrics >> nth=1')
            assert 'at the saved threshold' in trust and '95% answered' in trust and 'after temperature scaling' in trust
            assert page.locator('figcaption', has_text='Risk against coverage').count() == 1 and 'mistake' in page.inner_text('.legend')
            # what it means comes first: the notice, the verdict against the colour baseline, metric names in words
            assert 'not a medical device' in page.inner_text('.notice') and 'colour-only baseline' in page.inner_text('.verdict')
            metrics = page.inner_text('table.metrics')
            assert 'Matthews correlation (MCC)' in metrics and 'model, by pseudo-patient' in metrics
            (ROOT/'tests/artifacts').mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT/'tests/artifacts/report.png'), full_page=True)
            assert requests == [], requests
        finally: browser.close()

@pytest.fixture(scope='module')
def cv_report(tmp_path_factory):
    from all_nb.cv import cross_validate
    out = tmp_path_factory.mktemp('cv')/'cv'
    cross_validate(SAMPLE, out=out, folds=3, n_boot=100, gradcam=False, recipe='effnet-b3', arch='custom_cnn', pretrained=False,
                   epochs=1, size=64, lr=1e-3, split='block')
    return out

def test_cv_report_cells_show_their_images_and_link_the_folds(cv_report):
    from playwright.sync_api import sync_playwright
    import pandas as pd
    oof = pd.read_csv(cv_report/'oof.csv')
    wrong = oof[oof.label != oof.predicted]
    assert len(wrong), 'the tiny models should make mistakes on the sample'
    true, pred = wrong.groupby(['label', 'predicted']).size().idxmax()
    expected = sorted(wrong.file[(wrong.label == true) & (wrong.predicted == pred)])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=['--no-sandbox', '--disable-background-networking', '--disable-gpu'])
        try:
            page = browser.new_page(viewport={'width': 1300, 'height': 1000})
            page.goto((cv_report/'report.html').as_uri())
            assert page.locator('.card:visible').count() == 0
            page.focus(f"td.cell[data-true='{true}'][data-pred='{pred}']")  # reached from the keyboard, opened with Enter
            page.keyboard.press('Enter')
            assert sorted(page.locator('.card:visible').evaluate_all('cs => cs.map(c => c.dataset.file)')) == expected
            assert page.locator('h2', has_text='Two models against one').count() == 1 and 'model k-1' in page.content()
            for section in ('Is it reading the cell?', 'Likely label errors'): assert page.locator('h2', has_text=section).count() == 1
            assert page.locator('img.map').count() == 1 and 'images flagged' in page.content() and 'hidden</th>' in page.content()
            assert page.locator('.card:visible img').count() == len(expected)  # every mistake with its picture
            (ROOT/'tests/artifacts').mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT/'tests/artifacts/cv-report.png'), full_page=True)
            page.click("a[href='fold1/report.html']")
            assert page.url.endswith('fold1/report.html') and page.locator('h2', has_text='Confusion matrix').count() == 1
        finally: browser.close()
