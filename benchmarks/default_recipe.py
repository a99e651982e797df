"""The default recipe under pseudo-patient (block) and grouped 5-fold cross-validation, run through `all-nb cv`.

Each split is one `all-nb cv` folder in runs/ (every fold an ordinary run with its report; an interrupted
benchmark resumes fold by fold). This script calls the command and gathers its `cv.json` files into
`results/default_recipe.json` (every fold, every interval, the machine) and `results/default_recipe.md`. Then it
perturbs the test images of every block fold model with `evaluate.SWEEPS` (Gaussian noise, hue shift, desaturation):
how the shipped recipe holds up on unseen slides when the image changes.

    python benchmarks/default_recipe.py [--data ../shared/data/taleqani-all] [--splits block,grouped] [--table]
"""
import argparse, json, os, subprocess, sys
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATA = ROOT.parent/'shared'/'data'/'taleqani-all'
TARGETS = dict(block='every fold at least 0.995 and above its colour baseline', grouped='mean at least 0.9985 (at most 4 errors in 2,677)')

def ci(s:list)->str: return f"{s[0]:.4f} [{s[1]:.4f}, {s[2]:.4f}]" if s[1] is not None else f"{s[0]:.4f}"

TRUST = (('calibration error (debiased) before temperature scaling', 'calibration error before'), ('calibration error (debiased) after temperature scaling', 'after'),
         ('sensitivity at specificity 0.95', 'sensitivity at specificity 0.95'), ('sensitivity at specificity 0.99', 'at 0.99'),
         ('specificity at sensitivity 0.99', 'specificity at sensitivity 0.99'),
         ('sensitivity at the saved threshold', 'saved threshold: sensitivity'), ('specificity at the saved threshold', 'specificity'),
         ('accuracy 100% answered', 'accuracy, all answered'), ('accuracy 95% answered', '95% answered'), ('accuracy 90% answered', '90% answered'),
         ('share answered at the saved minimum confidence', 'saved minimum confidence: answered'), ('accuracy at the saved minimum confidence', 'their accuracy'))

def trust_lines(cv:dict)->list:
    "Calibration, operating point, abstention per fold, and what two fold models gain over one: markdown lines."
    folds = [f for f in cv['folds'] if 'trust' in f]
    if not folds: return []
    lines = ["Can a single prediction be trusted? Each fold model fitted its temperature, its benign/malignant threshold (for "
             "sensitivity 0.99) and its minimum confidence (for at most 1% errors among the answered images) on its own validation "
             "fold; the figures are on its test fold, with 95% intervals that resample pseudo-patients. The calibration error is "
             "the debiased L2 estimator of Kumar et al. (2019).", "",
             "| fold | temperature | " + ' | '.join(name for _, name in TRUST) + " |", "|---|---|" + "---|" * len(TRUST)]
    for f in folds:
        cells = [ci(f['trust'][k]) if f['trust'].get(k, [None])[0] is not None else 'n/a' for k, _ in TRUST]
        lines.append(f"| {f['fold']} | {f['calibration']['temperature']:.2f} | " + ' | '.join(cells) + " |")
    g = cv.get('ensemble')
    if g:
        lines += ["", f"Two models against one, on the {g['images']} images, each by two fold models that did not train on it (model k, "
                  "whose test image it is, and model k-1, whose validation image it is; model k-1 kept its best epoch by its loss on "
                  "these images, which can only flatter the pair a little):", "",
                  "| models | accuracy | errors | calibration error (debiased) |", "|---|---|---|---|",
                  f"| model k alone | {ci(g['one']['accuracy'])} | {g['one']['errors']} | {ci(g['one']['calibration_error'])} |",
                  f"| mean of models k and k-1 | {ci(g['pair']['accuracy'])} | {g['pair']['errors']} | {ci(g['pair']['calibration_error'])} |",
                  "", f"Gain in accuracy: {ci(g['gain'])}. The two agree on {g['agreement']:.1%} of the images; where they agree the mean "
                  f"is right {g['accuracy_when_agreeing']:.1%} of the time" + ("" if g['accuracy_when_disagreeing'] is None else
                  f", where they disagree {g['accuracy_when_disagreeing']:.1%}") + "."]
    return lines

def robustness(cv_folder:Path, data:str)->list:
    "Accuracy of every fold model of a CV on its own test images under each level of `evaluate.SWEEPS`: rows of (fold, images, perturbation, level, accuracy)."
    from all_nb.core import CV_FILES, fold_dir
    from all_nb.data import load_items
    from all_nb.evaluate import robustness_sweep
    from all_nb.train import load_run
    items, cv, rows = load_items(data, progress=False), json.loads((cv_folder/CV_FILES['summary']).read_text()), []
    for f in cv['folds']:
        run = load_run(fold_dir(cv_folder, f['fold']), items=items)
        sweep = robustness_sweep(run.learn)  # one view per image: the network itself, an eighth of the cost of the served TTA
        rows += [dict(fold=f['fold'], images=f['images'], perturbation=r.perturbation, level=r.level, accuracy=r.value)
                 for r in sweep[(sweep.metric == 'accuracy') & (sweep.scope == 'overall')].itertuples()]
        print(f"robustness: fold {f['fold']} swept", flush=True)
    return rows

def robustness_lines(rows:list)->list:
    "The sweep pooled over the folds (accuracy on all their test images) with the worst fold: markdown lines."
    import pandas as pd
    from all_nb.evaluate import LEVEL_UNITS
    if not rows: return []
    df = pd.DataFrame(rows).assign(correct=lambda d: d.accuracy * d.images)
    lines = ["## Robustness of the block fold models", "",
             "Each block fold model on its own test images (one view per image, no TTA), with the image perturbed before "
             "normalisation; the noise is the same for every level. Pooled: the accuracy on all the folds' test images; worst: "
             "the lowest fold. A model that reads cell shape and texture loses little under moderate hue shifts and desaturation; "
             "one that leans on the stain colour loses much.", "",
             "| perturbation | level | pooled accuracy | worst fold |", "|---|---|---|---|"]
    for (kind, level), g in df.groupby(['perturbation', 'level'], sort=False):
        lines.append(f"| {kind}, {LEVEL_UNITS[kind]} | {level:g} | {g.correct.sum() / g.images.sum():.4f} | "
                     f"{g.accuracy.min():.4f} (fold {g.fold.loc[g.accuracy.idxmin()]}) |")
    return lines + [""]

def markdown(res:dict)->str:
    "The results page: the summary per split, then every fold and the pooled confusion matrix, then the robustness sweep."
    from all_nb.benchmark import cv_table, markdown_table
    m = res['machine']
    lines = [f"# The default recipe, `{res['recipe']}`, under 5-fold cross-validation", "",
             f"Measured {m['date']} on {m['gpu'] or m['cpu']} ({m['cores']} CPU cores, {m['memory_gib']} GiB), torch {m['torch']}; "
             f"data: {res['images']} images. Each split is one `all-nb cv` run (`{' ; '.join(res['commands'])}`); its folders hold every "
             "fold's run and report. Rerun: `python benchmarks/default_recipe.py`.", "",
             "*Block*: runs of consecutive file numbers per class (pseudo-patients) kept in one fold, the closest this dataset "
             "allows to unseen patients. *Grouped*: near-duplicate images kept in one fold. The colour baseline is a logistic "
             "regression on colour histograms, trained and tested on the same folds. Minutes per fold are wall-clock: training, "
             "evaluation with 1,000 bootstrap resamples, and the report with a Grad-CAM for every test image; short tests "
             "ran beside some folds on the same two cores.", "",
             markdown_table(cv_table(res['cv'].values())), "",
             "Targets: " + '; '.join(f"{k}: {v}" for k, v in TARGETS.items()) + ".", ""]
    for kind, cv in res['cv'].items():
        lines += [f"## {kind} folds", "", "| fold | accuracy | balanced accuracy | MCC | macro AUC | errors | colour baseline | verdict | minutes |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for f in cv['folds']:
            mo = f['model']
            lines.append(f"| {f['fold']} | {ci(mo['accuracy'])} | {ci(mo['balanced_accuracy'])} | {ci(mo['mcc'])} | {ci(mo['auc'])} | "
                         f"{f['errors']}/{f['images']} | {ci(f['colour_baseline']['accuracy'])} | {f['verdict']} | {f['fold_seconds'] / 60:.1f} |")
        classes = cv['classes']
        lines += ["", "Pooled out-of-fold confusion matrix (rows: true class, columns: predicted):", "",
                  "| true \\ predicted | " + ' | '.join(classes) + " |", "|---|" + "---|" * len(classes)]
        lines += [f"| {c} | " + ' | '.join(str(n) for n in row) + " |" for c, row in zip(classes, cv['confusion'])]
        lines += ["", *trust_lines(cv), ""]
    lines += robustness_lines(res.get('robustness', []))
    return '\n'.join(lines)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', default=str(DEFAULT_DATA), help='folder of class folders of images')
    p.add_argument('--splits', default='block,grouped', help='split kinds to cross-validate, in this order')
    p.add_argument('--runs', default=str(ROOT/'runs'), help='parent folder of the CV folders (kept, and resumed on a rerun)')
    p.add_argument('--out', default=str(HERE/'results'), help='folder for default_recipe.json and default_recipe.md')
    p.add_argument('--table', action='store_true', help='only gather the finished CV folders into the results (the robustness sweep is kept from the last full run)')
    a = p.parse_args()
    if not Path(a.data).is_dir(): sys.exit(f"{a.data}: no such folder; pass --data with the dataset (see data/README.md)")
    from all_nb.core import CV_FILES, atomic_write
    from all_nb.run import DEFAULT_RECIPE
    from all_nb.benchmark import machine
    cli = Path(sys.executable).parent/'all-nb'
    kinds = a.splits.split(',')
    folders = {kind: Path(a.runs)/f'cv-{DEFAULT_RECIPE}-{kind}' for kind in kinds}
    commands = [f"all-nb cv DATA --split {kind} --out {folders[kind].relative_to(ROOT) if folders[kind].is_relative_to(ROOT) else folders[kind]}" for kind in kinds]
    if not a.table:
        for kind, command in zip(kinds, commands):
            print(command, flush=True)
            subprocess.run([str(cli), 'cv', a.data, '--split', kind, '--out', str(folders[kind])], check=True)
    cvs = {kind: json.loads((folders[kind]/CV_FILES['summary']).read_text()) for kind in kinds if (folders[kind]/CV_FILES['summary']).is_file()}
    cvs = {kind: cv for kind, cv in cvs.items() if cv.get('status') == 'finished'}
    if not cvs: sys.exit("no finished cross-validation yet; run without --table")
    res = dict(recipe=DEFAULT_RECIPE, machine=machine(), images=next(iter(cvs.values()))['summary']['images'],
               commands=[c for k, c in zip(kinds, commands) if k in cvs], cv=cvs)
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    earlier = out/'default_recipe.json'
    if a.table: res['robustness'] = json.loads(earlier.read_text()).get('robustness', []) if earlier.is_file() else []
    elif 'block' in cvs: res['robustness'] = robustness(folders['block'], a.data)
    atomic_write(out/'default_recipe.json', json.dumps(res, indent=1))
    atomic_write(out/'default_recipe.md', markdown(res))
    print(markdown(res))

if __name__ == '__main__': main()
