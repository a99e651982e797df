"""Dihedral test-time augmentation on the default recipe's cross-validation fold models: each test image once, and averaged over its 8 flips and quarter turns.

Test-time augmentation changes only how a trained model predicts, so the fold models of the committed block and grouped
cross-validations (`python benchmarks/default_recipe.py`, kept in runs/) are measured again, without training:
each fold's test images with one pass and with the eight views (`evaluate.predictions(learn, tta=True)`). The gain
is paired (same model, same images); its 95% interval resamples pseudo-patients, as the package's intervals do.

    python benchmarks/tta.py [--cvs runs/cv-lite0-masked-block,runs/cv-lite0-masked-grouped] [--table]
"""
import argparse, json, os, time
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CVS = ','.join(str(ROOT/'runs'/f'cv-lite0-masked-{split}') for split in ('block', 'grouped'))

def measure_fold(fold_dir:Path, items)->dict:
    "Test predictions of one fold model with one pass and with the 8 dihedral views: labels, both probabilities, seconds."
    from all_nb.train import load_run
    from all_nb.evaluate import predictions
    run = load_run(fold_dir, items=items)
    start = time.time()
    y, once = predictions(run.learn)
    one_pass = time.time() - start
    _, views = predictions(run.learn, tta=True)
    return dict(fold=run.fold, split=run.split_kind, test_index=run.split['test'], y=y.tolist(), once=once.tolist(), views=views.tolist(),
                seconds_once=round(one_pass, 1), seconds_views=round(time.time() - start - one_pass, 1),
                colour_baseline=json.loads((fold_dir/'result.json').read_text())['colour_baseline']['accuracy'][0])

def summarise(folds:list, items, n_boot:int=1000)->dict:
    "Per fold and pooled: accuracy and errors with one pass and with the views, images the views fix and break, and the pooled gain with a pseudo-patient interval."
    import numpy as np
    from all_nb.data import pseudo_patients
    from all_nb.evaluate import resampling_weights
    rows = []
    for f in folds:
        y, once, views = np.array(f['y']), np.array(f['once']).argmax(1), np.array(f['views']).argmax(1)
        rows.append(dict(fold=f['fold'], images=len(y), accuracy_once=float((once == y).mean()), accuracy_views=float((views == y).mean()),
                         errors_once=int((once != y).sum()), errors_views=int((views != y).sum()),
                         fixed=int(((once != y) & (views == y)).sum()), broken=int(((once == y) & (views != y)).sum()),
                         colour_baseline=f['colour_baseline'], seconds_once=f['seconds_once'], seconds_views=f['seconds_views']))
    index = np.concatenate([f['test_index'] for f in folds])
    y = np.concatenate([f['y'] for f in folds])
    once, views = (np.concatenate([np.array(f[k]).argmax(1) for f in folds]) for k in ('once', 'views'))
    w = resampling_weights(len(y), n_boot, 0, pseudo_patients(items)[index])
    gain = ((w * (views == y)).sum(1) - (w * (once == y)).sum(1)) / w.sum(1)
    return dict(split=folds[0]['split'], folds=rows, images=len(y), errors_once=int((once != y).sum()), errors_views=int((views != y).sum()),
                accuracy_once=float((once == y).mean()), accuracy_views=float((views == y).mean()),
                gain=[float(gain[0]), *np.percentile(gain[1:], [2.5, 97.5]).tolist()],
                above_baseline_once=sum(r['accuracy_once'] > r['colour_baseline'] for r in rows),
                above_baseline_views=sum(r['accuracy_views'] > r['colour_baseline'] for r in rows))

def screen_sentence(ablation:Path=HERE/'results'/'ablation.jsonl')->str:
    "What the ablation's screen says of the 8 views (`ablation.tta_screen`)."
    from ablation import tta_screen
    return tta_screen([json.loads(l) for l in ablation.read_text().splitlines()])

def markdown(res:dict)->str:
    "The results as a markdown page."
    m = res['machine']
    lines = ["# Dihedral test-time augmentation on the default recipe's fold models", "",
             f"Measured {m['date']} on {m['cpu']} ({m['cores']} CPU cores, {m['memory_gib']} GiB{', ' + m['gpu'] if m['gpu'] else ', no GPU'}), "
             f"torch {m['torch']}; data: {res['images']} images. Rerun: `python benchmarks/tta.py`.", "",
             "The fold models are those of the committed cross-validations of `lite0-masked` (`results/default_recipe.md`), trained "
             "before test-time augmentation was part of the recipe; only their predictions change. *once*: each test image as it is; "
             "*8 views*: the mean of its probabilities over its eight flips and quarter turns (`augment.dihedral_views`). "
             "*Fixed* and *broken*: images whose call the views make right or wrong. The gain's 95% interval resamples pseudo-patients. "
             f"The factor was chosen on the ablation's screen (`results/ablation.md`): {res['screen']} These test folds confirm it once.", "",
             "| split | images | accuracy, once | accuracy, 8 views | errors, once | errors, 8 views | gain [95% interval] | folds above colour baseline, once | 8 views |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in res['splits']:
        g = s['gain']
        lines.append(f"| {s['split']} | {s['images']} | {s['accuracy_once']:.4f} | {s['accuracy_views']:.4f} | {s['errors_once']} | {s['errors_views']} | "
                     f"{g[0]:+.4f} [{g[1]:+.4f}, {g[2]:+.4f}] | {s['above_baseline_once']}/{len(s['folds'])} | {s['above_baseline_views']}/{len(s['folds'])} |")
    for s in res['splits']:
        lines += ["", f"## {s['split']} folds", "", "| fold | images | accuracy, once | accuracy, 8 views | colour baseline | errors, once | errors, 8 views | fixed | broken | seconds, once | seconds, 8 views |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['fold']} | {r['images']} | {r['accuracy_once']:.4f} | {r['accuracy_views']:.4f} | {r['colour_baseline']:.4f} | {r['errors_once']} | "
                  f"{r['errors_views']} | {r['fixed']} | {r['broken']} | {r['seconds_once']} | {r['seconds_views']} |" for r in s['folds']]
    return '\n'.join(lines) + '\n'

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--cvs', default=CVS, help='finished all-nb cv folders, joined by commas')
    p.add_argument('--out', default=str(HERE/'results'), help='folder for tta.json and tta.md')
    p.add_argument('--table', action='store_true', help='only write tta.md from tta.json')
    a = p.parse_args()
    out = Path(a.out)
    if a.table:
        (out/'tta.md').write_text(markdown(json.loads((out/'tta.json').read_text())))
        return
    from all_nb.core import atomic_write, fold_dir
    from all_nb.data import load_items
    from all_nb.benchmark import machine
    res = dict(machine=machine(), screen=screen_sentence(), splits=[])
    for cv in a.cvs.split(','):
        cv = Path(cv)
        if not (cv/'cv.json').is_file(): raise SystemExit(f"{cv}: not a finished all-nb cv folder; run python benchmarks/default_recipe.py first")
        summary = json.loads((cv/'cv.json').read_text())
        items = load_items(summary['root'], progress=False)
        folds = []
        for k in range(summary['settings']['folds']):
            folds.append(measure_fold(fold_dir(cv, k), items))
            f = folds[-1]
            print(f"{cv.name} fold {k}: {f['seconds_once']} s once, {f['seconds_views']} s for 8 views", flush=True)
        res['splits'].append(summarise(folds, items))
        res['images'] = len(items)
        s = res['splits'][-1]
        print(f"{s['split']}: errors {s['errors_once']} once, {s['errors_views']} with 8 views; gain {s['gain']}", flush=True)
    atomic_write(out/'tta.json', json.dumps(res, indent=1))
    atomic_write(out/'tta.md', markdown(res))
    print(markdown(res))

if __name__ == '__main__': main()
