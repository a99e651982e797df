"""Speed of all_nb against plain PyTorch/timm on the same images, model and settings.

Training: EfficientNet-B3 at 224 px, batch 32: images/s of the all_nb learner and of a plain timm loop,
each in fp32 and in mixed precision (bf16 autocast + channels-last on CPU, fp16 on CUDA).
Inference: `all-nb predict` against a plain timm eval loop: ms/image at batch 1 and 64, and the
end-to-end time of a whole folder; peak memory (RSS) of every measurement.

Every measurement runs in a process of its own (so its peak memory is its own), and the configurations
take turns over several rounds (so a busy machine slows them alike and the ratios hold).

    python benchmarks/speed.py [--data ../shared/data/taleqani-all] [--rounds 2] [--batches 5]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_DATA = ROOT.parent/'shared'/'data'/'taleqani-all'
ARCH, SIZE, TRAIN_BS = 'efficientnet_b3', 224, 32
TRAIN_CONFIGS = [(impl, prec) for prec in ('fp32', 'mixed') for impl in ('all_nb', 'plain')]


# ------------------------------------------------------------ measurements, each run in its own process

def _device():
    import torch
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')

def _autocast(device, enabled:bool=True):
    import torch
    return torch.autocast(device.type, dtype=torch.float16 if device.type == 'cuda' else torch.bfloat16, enabled=enabled)

def _sync(device):
    import torch
    if device.type == 'cuda': torch.cuda.synchronize()

def _train_part(data):
    "The items and the grouped 70/15/15 split that `all-nb train` would use."
    from all_nb.data import load_items, make_split
    items = load_items(data, progress=False)
    return items, make_split(items, 'grouped', seed=0)

def train_all_nb(data, precision:str, warmup:int, batches:int)->list:
    "Clock times after each batch of `all_learner` + `fit_one_cycle`, as `all-nb train` runs them."
    from fastai.callback.core import Callback, CancelFitException
    from all_nb.loaders import all_dls
    from all_nb.train import all_learner
    items, split = _train_part(data)
    learn = all_learner(all_dls(items, split, ARCH, SIZE, TRAIN_BS, 'flips-rot'), ARCH, pretrained=False,
                        mixed_precision=precision == 'mixed')
    clock = []
    class Clock(Callback):
        order = 99
        def after_batch(self):
            _sync(learn.dls.device)
            clock.append(time.perf_counter())
            if len(clock) > warmup + batches: raise CancelFitException()
    learn.fit_one_cycle(1, 1e-3, cbs=Clock())
    return clock

def _plain_transforms(size:int, train:bool):
    "torchvision transforms for `ARCH`: resize + crop (+ random flips for training) + ImageNet normalisation."
    import timm, torch
    from torchvision.transforms import v2 as T
    cfg = timm.create_model(ARCH, pretrained=False).pretrained_cfg
    crop = [T.RandomCrop(size), T.RandomHorizontalFlip(), T.RandomVerticalFlip()] if train else [T.CenterCrop(size)]
    return T.Compose([T.Resize(size), *crop, T.ToImage(), T.ToDtype(torch.float32, scale=True), T.Normalize(cfg['mean'], cfg['std'])])

def _plain_loader(files, labels, size:int, bs:int, train:bool):
    "A plain PyTorch DataLoader over image files (in this process, like all_nb on a CPU)."
    import torch
    from PIL import Image
    tfm = _plain_transforms(size, train)
    class Files(torch.utils.data.Dataset):
        def __len__(self): return len(files)
        def __getitem__(self, i): return tfm(Image.open(files[i]).convert('RGB')), labels[i]
    return torch.utils.data.DataLoader(Files(), batch_size=bs, shuffle=train, num_workers=0, drop_last=train)

def _mixed_model(model, device, mixed:bool):
    "Channels-last memory for mixed precision on a CPU, as all_nb does."
    import torch
    return model.to(memory_format=torch.channels_last) if mixed and device.type == 'cpu' else model

def train_plain(data, precision:str, warmup:int, batches:int)->list:
    "Clock times after each batch of a plain timm + PyTorch loop over the same images."
    import timm, torch
    items, split = _train_part(data)
    rows, classes = items.iloc[split['train']], sorted(items.label.unique())
    loader = _plain_loader(rows.path.tolist(), [classes.index(l) for l in rows.label], SIZE, TRAIN_BS, train=True)
    device, mixed = _device(), precision == 'mixed'
    model = _mixed_model(timm.create_model(ARCH, pretrained=False, num_classes=len(classes)).to(device), device, mixed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-3, total_steps=len(loader))
    scaler = torch.amp.GradScaler(enabled=mixed and device.type == 'cuda')
    loss_fn, clock = torch.nn.CrossEntropyLoss(), []
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        if mixed and device.type == 'cpu': xb = xb.contiguous(memory_format=torch.channels_last)
        with _autocast(device, mixed): loss = loss_fn(model(xb).float(), yb)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt); scaler.update(); sched.step()
        _sync(device)
        clock.append(time.perf_counter())
        if len(clock) > warmup + batches: break
    return clock

def optimizer_step(impl:str, steps:int=5)->float:
    "Seconds per AdamW step over EfficientNet-B3's parameters: fastai's own `Adam` or PyTorch's (as all_nb wraps it)."
    import timm, torch
    from fastai.optimizer import Adam
    from all_nb.run import OPTIMIZERS
    params = list(timm.create_model(ARCH, pretrained=False, num_classes=4).parameters())
    for p in params: p.grad = torch.randn_like(p) * 1e-3
    opt = Adam(params, lr=1e-3) if impl == 'fastai' else OPTIMIZERS['adamw']([params], lr=1e-3)
    opt.step()
    start = time.perf_counter()
    for _ in range(steps): opt.step()
    return (time.perf_counter() - start) / steps

def _images(data)->list:
    "The image files under `data` (what `all-nb predict` classifies; it lists any other file as skipped)."
    from all_nb.data import IMAGE_EXTS
    from all_nb.inference import collect_images
    return [f for f in collect_images([data]) if f.suffix.lower() in IMAGE_EXTS]

def predict_all_nb(model_dir, data, bs:int, n:int)->list:
    "(seconds, images) for `all_nb.inference.predict_files` (what `all-nb predict` runs) on `n` images, after a warm-up."
    from all_nb.inference import load_model, predict_files
    m, files = load_model(model_dir), _images(data)[:n]
    predict_files(m, files[:bs], bs, progress=False)
    start = time.perf_counter()
    predict_files(m, files, bs, progress=False)
    _sync(_device())
    return [time.perf_counter() - start, len(files)]

def _plain_predict(model_dir, files, bs:int):
    "Class probabilities of `files` from a plain timm eval loop in mixed precision."
    import timm, torch
    from safetensors.torch import load_file
    meta = json.loads((Path(model_dir)/'model.json').read_text())
    device = _device()
    model = timm.create_model(ARCH, pretrained=False, num_classes=len(meta['classes']))
    model.load_state_dict(load_file(Path(model_dir)/'model.safetensors'))
    model = _mixed_model(model.to(device).eval(), device, True)
    out = []
    with torch.inference_mode():
        for xb, _ in _plain_loader(files, [0] * len(files), meta['size'], bs, train=False):
            xb = xb.to(device)
            if device.type == 'cpu': xb = xb.contiguous(memory_format=torch.channels_last)
            with _autocast(device): out.append(model(xb).float().softmax(1).cpu())
    return torch.cat(out)

def predict_plain(model_dir, data, bs:int, n:int)->list:
    "(seconds, images) for the plain eval loop on `n` images, after a warm-up."
    files = [str(f) for f in _images(data)][:n]
    _plain_predict(model_dir, files[:bs], bs)
    start = time.perf_counter()
    _plain_predict(model_dir, files, bs)
    _sync(_device())
    return [time.perf_counter() - start, len(files)]

def folder_plain(model_dir, data, bs:int)->int:
    "The plain eval loop over a whole folder, end to end; writes nothing."
    return len(_plain_predict(model_dir, [str(f) for f in _images(data)], bs))

MEASUREMENTS = {f.__name__: f for f in (train_all_nb, train_plain, optimizer_step, predict_all_nb, predict_plain, folder_plain)}


# ------------------------------------------------------------ the driver

def measure(name:str, **kw)->dict:
    "Run one of `MEASUREMENTS` in a fresh process; its wall time, peak RSS and result."
    with tempfile.NamedTemporaryFile(suffix='.json') as f:
        m = timed_process([sys.executable, __file__, '--measure', name, json.dumps(kw, default=str), f.name])
        return dict(m, result=json.loads(Path(f.name).read_text()))

def timed_process(cmd:list)->dict:
    "Run `cmd` to completion; its wall seconds and peak RSS in MiB."
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        if status: err.seek(0); sys.exit(f"{' '.join(map(str, cmd))} failed:\n{err.read().decode()[-3000:]}")
    return dict(wall_s=round(wall, 2), peak_rss_mib=round(usage.ru_maxrss / 1024))

def step_rate(clock:list, warmup:int)->float:
    "Images per second over the batches after `warmup`."
    steps = clock[warmup:]
    return TRAIN_BS * (len(steps) - 1) / (steps[-1] - steps[0])

def training(data, rounds:int, warmup:int, batches:int)->list:
    "Every training configuration, taking turns for `rounds` rounds."
    rows = []
    for r in range(rounds):
        for impl, prec in TRAIN_CONFIGS:
            m = measure(f'train_{impl}', data=data, precision=prec, warmup=warmup, batches=batches)
            rows.append(dict(round=r, impl=impl, precision=prec, images_per_s=round(step_rate(m['result'], warmup), 2),
                             peak_rss_mib=m['peak_rss_mib']))
            print(rows[-1], flush=True)
    return rows

def optimizers(rounds:int)->list:
    "ms per optimizer step, fastai's Adam against the PyTorch AdamW all_nb uses, taking turns."
    rows = [dict(round=r, impl=impl, ms_per_step=round(1000 * measure('optimizer_step', impl=impl)['result'], 1))
            for r in range(rounds) for impl in ('fastai', 'torch')]
    for row in rows: print(row, flush=True)
    return rows

def saved_model(folder:Path, classes:list)->Path:
    "An EfficientNet-B3 in all_nb's safe model format (random weights: speed doesn't depend on them)."
    from all_nb.inference import model_meta, save_safe_model
    from all_nb.models import create_model
    folder.mkdir(parents=True, exist_ok=True)
    save_safe_model(create_model(ARCH, n_out=len(classes), pretrained=False), model_meta(ARCH, classes, SIZE, {}, 'speed-benchmark'), folder)
    return folder

def inference(data, rounds:int, tmp:Path)->dict:
    "ms/image at batch 1 and 64, and whole-folder end-to-end time, for `all-nb predict` and the plain loop."
    from all_nb.data import CLASSES
    model_dir = saved_model(tmp/'model', list(CLASSES))
    latency, folder = [], []
    for r in range(rounds):
        for bs, n in ((1, 32), (64, 128)):
            for impl in ('all_nb', 'plain'):
                m = measure(f'predict_{impl}', model_dir=model_dir, data=data, bs=bs, n=n)
                seconds, images = m['result']
                latency.append(dict(round=r, impl=impl, bs=bs, images=images, ms_per_image=round(1000 * seconds / images, 1),
                                    peak_rss_mib=m['peak_rss_mib']))
                print(latency[-1], flush=True)
    for r in range(rounds):
        cli = shutil.which('all-nb') or str(Path(sys.executable).parent/'all-nb')
        runs = dict(all_nb=timed_process([cli, 'predict', str(model_dir), str(data), '--out', str(tmp/f'pred{r}.csv'), '--bs', '64', '--overwrite']),
                    plain=measure('folder_plain', model_dir=model_dir, data=data, bs=64))
        for impl, m in runs.items():
            folder.append(dict(round=r, impl=impl, wall_s=m['wall_s'], peak_rss_mib=m['peak_rss_mib']))
            print(folder[-1], flush=True)
    return dict(latency=latency, folder=folder, folder_images=len(_images(data)))

def best(rows:list, key:str, **match)->float:
    "The best of the rounds for `key` among `rows` matching `match`: the fastest, or for memory the largest peak."
    xs = [r[key] for r in rows if all(r[k] == v for k, v in match.items())]
    return max(xs) if key in ('images_per_s', 'peak_rss_mib') else min(xs)

def summary(res:dict)->dict:
    "The best of the rounds (noise on a shared machine only ever slows a run down), and the ratios the targets are about."
    tr, lat, fol = res['training'], res['inference']['latency'], res['inference']['folder']
    s = {f'train_{i}_{p}_img_s': best(tr, 'images_per_s', impl=i, precision=p) for i, p in TRAIN_CONFIGS}
    s |= {f'train_{i}_{p}_peak_mib': best(tr, 'peak_rss_mib', impl=i, precision=p) for i, p in TRAIN_CONFIGS}
    s |= {f'predict_{i}_bs{b}_ms': best(lat, 'ms_per_image', impl=i, bs=b) for i in ('all_nb', 'plain') for b in (1, 64)}
    s |= {f'predict_{i}_bs{b}_peak_mib': best(lat, 'peak_rss_mib', impl=i, bs=b) for i in ('all_nb', 'plain') for b in (1, 64)}
    s |= {f'folder_{i}_s': best(fol, 'wall_s', impl=i) for i in ('all_nb', 'plain')}
    s |= {f'folder_{i}_peak_mib': best(fol, 'peak_rss_mib', impl=i) for i in ('all_nb', 'plain')}
    s |= {f'optimizer_{i}_ms': best(res['optimizer'], 'ms_per_step', impl=i) for i in ('fastai', 'torch')}
    n = res['inference']['folder_images']
    s |= {f'folder_{i}_img_s': round(n / s[f'folder_{i}_s'], 1) for i in ('all_nb', 'plain')}
    s['ratios'] = dict(
        mixed_vs_fp32_all_nb=s['train_all_nb_mixed_img_s'] / s['train_all_nb_fp32_img_s'],
        mixed_vs_fp32_plain=s['train_plain_mixed_img_s'] / s['train_plain_fp32_img_s'],
        learner_vs_plain_fp32=s['train_all_nb_fp32_img_s'] / s['train_plain_fp32_img_s'],
        learner_vs_plain_mixed=s['train_all_nb_mixed_img_s'] / s['train_plain_mixed_img_s'],
        predict_vs_plain_bs1=s['predict_plain_bs1_ms'] / s['predict_all_nb_bs1_ms'],
        predict_vs_plain_bs64=s['predict_plain_bs64_ms'] / s['predict_all_nb_bs64_ms'],
        predict_vs_plain_folder=s['folder_plain_s'] / s['folder_all_nb_s'])
    s['ratios'] = {k: round(v, 3) for k, v in s['ratios'].items()}
    return s

TARGETS = [('mixed_vs_fp32_all_nb', 1.8, 'mixed precision >= 1.8x fp32 (all_nb learner)'),
           ('learner_vs_plain_mixed', 0.9, 'all_nb learner within 10% of the plain loop (mixed)'),
           ('learner_vs_plain_fp32', 0.9, 'all_nb learner within 10% of the plain loop (fp32)'),
           ('predict_vs_plain_bs1', 0.9, 'predict within 10% of the plain eval loop, batch 1'),
           ('predict_vs_plain_bs64', 0.9, 'predict within 10% of the plain eval loop, batch 64'),
           ('predict_vs_plain_folder', 0.9, 'all-nb predict within 10% of the plain eval loop, whole folder end to end')]

def markdown(res:dict)->str:
    "The results as a markdown page."
    m, s = res['machine'], res['summary']
    mixed = 'fp16' if m['gpu'] else 'bf16 + channels-last'
    lines = [f"# Speed: all_nb against plain PyTorch/timm", "",
             f"Measured {m['date']} on {m['gpu'] or m['cpu']} ({m['cores']} CPU cores, {m['memory_gib']} GiB), torch {m['torch']}, "
             f"Python {m['python']}; data: {res['data']} ({res['inference']['folder_images']} images). "
             f"Best of {res['rounds']} rounds in which the configurations took turns (noise only ever slows a measurement down; "
             f"every round is in `speed.json`), the largest peak memory; each measurement in its own process. "
             f"Rerun: `python benchmarks/speed.py`.", "",
             f"## Training: {ARCH}, {SIZE} px, batch {TRAIN_BS} ({res['batches']} timed batches after {res['warmup']} warm-up)", "",
             "| | fp32 images/s | mixed images/s | mixed / fp32 | peak RSS fp32 / mixed (MiB) |", "|---|---|---|---|---|"]
    for impl, label in (('all_nb', 'all_nb learner (`all-nb train`)'), ('plain', 'plain timm loop')):
        f32, mx = s[f'train_{impl}_fp32_img_s'], s[f'train_{impl}_mixed_img_s']
        lines.append(f"| {label} | {f32:.2f} | {mx:.2f} | {mx / f32:.2f}x | {s[f'train_{impl}_fp32_peak_mib']} / {s[f'train_{impl}_mixed_peak_mib']} |")
    lines += ["", f"Mixed precision here is {mixed}. One AdamW step over the model's {ARCH} parameters: fastai's own `Adam` "
              f"{s['optimizer_fastai_ms']} ms, PyTorch's `AdamW(foreach=True)` as all_nb wraps it {s['optimizer_torch_ms']} ms.",
              "", f"## Inference ({mixed})", "",
              "| | batch 1 ms/image | batch 64 ms/image | whole folder, end to end (s) | images/s | peak RSS batch 1 / 64 / folder (MiB) |",
              "|---|---|---|---|---|---|"]
    for impl, label in (('all_nb', '`all-nb predict`'), ('plain', 'plain timm eval loop')):
        lines.append(f"| {label} | {s[f'predict_{impl}_bs1_ms']} | {s[f'predict_{impl}_bs64_ms']} | {s[f'folder_{impl}_s']} | "
                     f"{s[f'folder_{impl}_img_s']} | {s[f'predict_{impl}_bs1_peak_mib']} / {s[f'predict_{impl}_bs64_peak_mib']} / {s[f'folder_{impl}_peak_mib']} |")
    lines += ["", "The whole-folder time includes starting Python and importing the libraries; `all-nb predict` also writes its CSV.", "",
              "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for key, need, text in TARGETS:
        lines.append(f"| {text} | {s['ratios'][key]:.2f}x | {'yes' if s['ratios'][key] >= need else 'no'} |")
    lines += ["", "## Every round", "", "| round | training | precision | images/s | peak RSS (MiB) |", "|---|---|---|---|---|"]
    lines += [f"| {r['round']} | {r['impl']} | {r['precision']} | {r['images_per_s']} | {r['peak_rss_mib']} |" for r in res['training']]
    lines += ["", "| round | inference | batch | ms/image | peak RSS (MiB) |", "|---|---|---|---|---|"]
    lines += [f"| {r['round']} | {r['impl']} | {r['bs']} | {r['ms_per_image']} | {r['peak_rss_mib']} |" for r in res['inference']['latency']]
    return '\n'.join(lines) + '\n'

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', default=str(DEFAULT_DATA), help='folder of class folders of images')
    p.add_argument('--rounds', type=int, default=2, help='turns each configuration takes')
    p.add_argument('--warmup', type=int, default=2, help='untimed training batches first')
    p.add_argument('--batches', type=int, default=5, help='timed training batches')
    p.add_argument('--out', default=str(HERE/'results'), help='folder for speed.json and speed.md')
    p.add_argument('--summarise', action='store_true', help="only remake the summary and speed.md from OUT's speed.json")
    p.add_argument('--measure', nargs=3, metavar=('NAME', 'JSON', 'OUT'), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.summarise:
        res = json.loads((Path(a.out)/'speed.json').read_text())
        return write_results(dict(res, summary=summary(res)), Path(a.out))
    if a.measure:
        name, kw, result = a.measure
        Path(result).write_text(json.dumps(MEASUREMENTS[name](**json.loads(kw))))
        return
    if not Path(a.data).is_dir(): sys.exit(f"{a.data}: no such folder; pass --data with the dataset (see data/README.md)")
    from all_nb.benchmark import machine
    with tempfile.TemporaryDirectory() as tmp:
        res = dict(machine=machine(), data=a.data, rounds=a.rounds, warmup=a.warmup, batches=a.batches,
                   training=training(a.data, a.rounds, a.warmup, a.batches), optimizer=optimizers(a.rounds),
                   inference=inference(a.data, a.rounds, Path(tmp)))
    write_results(dict(res, summary=summary(res)), Path(a.out))

def write_results(res:dict, out:Path):
    "speed.json and speed.md in `out`."
    out.mkdir(parents=True, exist_ok=True)
    (out/'speed.json').write_text(json.dumps(res, indent=1))
    (out/'speed.md').write_text(markdown(res))
    print(markdown(res))

if __name__ == '__main__': main()
