"""How much wider the intervals get when pseudo-patients, not images, are resampled: the block folds of a CV.

Reads an `all-nb cv` folder's out-of-fold probabilities (`oof.csv`), rebuilds the pseudo-patient clusters of
`data.pseudo_patients` for several cluster sizes, and sets each fold's 95% interval for accuracy and
balanced accuracy from resampling images beside the one from resampling clusters.

    python benchmarks/intervals.py [--cv runs/cv-lite0-masked-block] [--data ../shared/data/taleqani-all]
"""
import argparse, json, os, sys
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATA = ROOT.parent/'shared'/'data'/'taleqani-all'
SIZES = (20, 37, 60)  # images per pseudo-patient: fewer, the published set's average, more
METRICS = (('accuracy', 'overall'), ('balanced_accuracy', 'overall'), ('sensitivity', 'benign vs malignant'), ('specificity', 'benign vs malignant'))

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--cv', default=str(ROOT/'runs'/'cv-lite0-masked-block'), help='an all-nb cv folder')
    p.add_argument('--data', default=str(DEFAULT_DATA), help='the folder the CV was run on')
    p.add_argument('--out', default=str(HERE/'results'), help='folder for intervals.json and intervals.md')
    a = p.parse_args()
    import numpy as np, pandas as pd
    from all_nb.core import CV_FILES, atomic_write
    from all_nb.data import CLASSES, load_items, pseudo_patients
    from all_nb.evaluate import metric_table
    from all_nb.benchmark import machine
    oof_file = Path(a.cv)/CV_FILES['oof']
    if not oof_file.is_file(): sys.exit(f"{oof_file}: no out-of-fold predictions; run all-nb cv first")
    oof, items = pd.read_csv(oof_file), load_items(a.data, progress=False)
    row = items.reset_index().set_index('file').loc[oof.file, 'index'].to_numpy()  # oof rows -> items rows
    clusters = {size: pseudo_patients(items, size)[row] for size in SIZES}
    y, probs = oof.label.map(CLASSES.index).to_numpy(), oof[[f'prob_{c}' for c in CLASSES]].to_numpy()
    rows = []
    for fold in sorted(oof.fold.unique()):
        m = (oof.fold == fold).to_numpy()
        tables = {'images': metric_table(y[m], probs[m])} | {f'pseudo-patients of {s}': metric_table(y[m], probs[m], clusters=clusters[s][m]) for s in SIZES}
        for how, t in tables.items():
            t = t.set_index(['metric', 'scope'])
            for metric in METRICS:
                r = t.loc[metric]
                rows.append(dict(fold=int(fold), resampled=how, metric=' '.join(metric), value=float(r.value), lo=None if pd.isna(r.lo) else float(r.lo),
                                 hi=None if pd.isna(r.hi) else float(r.hi), clusters=None if pd.isna(r.clusters) else int(r.clusters), note=r.note))
    df = pd.DataFrame(rows)
    df['width'] = df.hi - df.lo
    widths = df.pivot_table(index='metric', columns='resampled', values='width', aggfunc='mean')
    ratio = (widths.div(widths['images'], axis=0)).drop(columns='images')
    m = machine()
    lines = ["# Intervals by pseudo-patient: how much wider, on the block folds", "",
             f"Measured {m['date']} on {m['cpu']} ({m['cores']} CPU cores) from `{Path(a.cv).name}/oof.csv` (every image's out-of-fold "
             f"probabilities; {len(oof)} images, {oof.fold.nunique()} folds). A pseudo-patient is a run of about N consecutive file numbers "
             "within a class, duplicate groups kept whole (`data.pseudo_patients`); the published set averages 37 images per patient. "
             "Each interval is a 95% percentile bootstrap with 1,000 resamples of the fold's test images, or of its pseudo-patients. "
             "Rerun: `python benchmarks/intervals.py`.", "",
             "## Mean interval width, and how many times wider than resampling images", "",
             "| metric | images | " + ' | '.join(f'pseudo-patients of {s}' for s in SIZES) + " |", "|---|---|" + "---|" * len(SIZES)]
    for metric, w in widths.iterrows():
        wide = lambda s: (f"{w[f'pseudo-patients of {s}']:.4f} ({ratio.loc[metric, f'pseudo-patients of {s}']:.1f}x)"
                          if w[f'pseudo-patients of {s}'] == w[f'pseudo-patients of {s}'] else 'too few pseudo-patients')
        lines.append(f"| {metric} | {w['images']:.4f} | " + ' | '.join(wide(s) for s in SIZES) + " |")
    lines += ["", "Why: a model's mistakes on a block fold come a slide at a time (one stain, one background), so the errors of "
              "neighbouring images are not independent. Resampling images treats each mistake as a new patient's and "
              "understates how much the next set of patients could differ; resampling pseudo-patients keeps each slide's "
              "mistakes together. The larger the clusters, the fewer there are, and the wider the interval.", "",
              "## Every fold", "", "| fold | metric | value | images resampled | " + ' | '.join(f'pseudo-patients of {s}' for s in SIZES) + " |",
              "|---|---|---|---|" + "---|" * len(SIZES)]
    known = lambda x: x is not None and x == x  # neither None nor NaN
    ci = lambda r: (f"[{r.lo:.4f}, {r.hi:.4f}]" + (f" ({int(r.clusters)} clusters)" if known(r.clusters) else '')) if known(r.lo) else r.note
    for (fold, metric), g in df.groupby(['fold', 'metric'], sort=False):
        g = g.set_index('resampled')
        lines.append(f"| {fold} | {metric} | {g.value.iloc[0]:.4f} | {ci(g.loc['images'])} | " + ' | '.join(ci(g.loc[f'pseudo-patients of {s}']) for s in SIZES) + " |")
    out = Path(a.out)
    atomic_write(out/'intervals.json', json.dumps(dict(machine=m, cv=Path(a.cv).name, sizes=SIZES, rows=rows), indent=1))
    atomic_write(out/'intervals.md', '\n'.join(lines) + '\n')
    print('\n'.join(lines[:14]))

if __name__ == '__main__': main()
