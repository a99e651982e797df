"""How long `all-nb` takes to answer before any work: the top-level help, the version, a mistyped command, and a command's own help.

Each is run as a user runs it (the installed console script, a fresh process), `--repeats` times; the median and the
slowest are kept. The top-level answers come from `all_nb.launch`, which imports neither torch nor fastai; a
command's own `--help` builds its options from the library's signatures, so it pays for those imports.

    python benchmarks/startup.py [--repeats 7]
"""
import argparse, json, statistics, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = {'all-nb --help': ['--help'], 'all-nb --version': ['--version'], 'all-nb trian (a typo)': ['trian'], 'all-nb train --help': ['train', '--help']}
TARGET = 1.0  # seconds for the top-level answers

def timed(args:list)->float:
    "Wall-clock seconds of one run of the console script with `args`."
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent/'all-nb'), *args], capture_output=True)
    return time.perf_counter() - start

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--repeats', type=int, default=7, help='runs of each case')
    p.add_argument('--out', default=str(HERE/'results'), help='folder for startup.json and startup.md')
    a = p.parse_args()
    from all_nb.core import atomic_write
    from all_nb.benchmark import machine
    timed(['--help'])  # a first run fills the file cache, as it is on any machine used twice
    res = {name: sorted(timed(args) for _ in range(a.repeats)) for name, args in CASES.items()}
    rows = {name: dict(median=statistics.median(t), slowest=t[-1], runs=len(t)) for name, t in res.items()}
    m = machine()
    md = [f"# Start-up time of `all-nb`", "",
          f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores, {m['memory_gib']} GiB), Python {m['python']}, torch {m['torch']}; "
          f"{a.repeats} fresh processes per case, after one warm-up run. Target for the top-level answers: under {TARGET:.0f} s. "
          "Rerun: `python benchmarks/startup.py`.", "", "| command | median (s) | slowest (s) |", "|---|---|---|"]
    md += [f"| `{name}` | {r['median']:.2f} | {r['slowest']:.2f} |" for name, r in rows.items()]
    md += ["", "The first three never import torch, fastai or timm (`all_nb.launch`); a command's own `--help` does, since its options "
           "are the library functions' parameters."]
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    atomic_write(out/'startup.json', json.dumps(dict(machine=m, target_seconds=TARGET, cases=rows), indent=1))
    atomic_write(out/'startup.md', '\n'.join(md) + '\n')
    print('\n'.join(md))

if __name__ == '__main__': main()
