"Data-parallel training for real: `accelerate launch` starts two processes on two CPU cores (gloo underneath), and one run comes out."
import json, subprocess
import numpy as np, pandas as pd
from conftest import SAMPLE, CLI

TINY = ['--recipe', 'effnet-b3', '--arch', 'custom_cnn', '--from-scratch', '--size', 64, '--lr', 1e-3, '--bs', 8, '--epochs', 2]

def test_two_processes_train_one_run(tmp_path):
    out = tmp_path/'run'
    # accelerate's --cpu starts a single process; --multi_gpu starts torchrun's processes, and on a machine without
    # GPUs the run tells Accelerate to use the CPUs (train._parallel), so the processes talk through gloo
    launch = [CLI.parent/'accelerate', 'launch', '--multi_gpu', '--num_processes', 2, '--num_machines', 1, '--mixed_precision', 'no', '--dynamo_backend', 'no']
    p = subprocess.run([str(a) for a in [*launch, CLI, 'train', SAMPLE, *TINY, '--out', out]], capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-4000:]
    cfg = json.loads((out/'config.json').read_text())
    assert cfg['device'] == 'cpu x 2 processes' and cfg['status'] == 'finished' and cfg['epochs_run'] == 2
    assert p.stdout.count('report: ') == 1 and p.stdout.count('weights: ') == 1  # the first process alone writes and reports
    assert [f.name for f in tmp_path.iterdir()] == ['run'] and not list(out.glob('*.saving*'))
    assert len(pd.read_csv(out/'history.csv')) == 2
    # the saved model predicts what the first process's learner predicted, calibrated as model.json says
    from all_nb.inference import load_model, predict_files
    from all_nb.trust import temper
    ev = json.loads((out/'evaluation.json').read_text())
    m = load_model(out)
    files = [str(SAMPLE/p['file']) for p in ev['predictions']]
    preds, _ = predict_files(m, files, half=False, progress=False)
    learner = temper(np.array([list(p['probs'].values()) for p in ev['predictions']]), m.calibration['temperature'])
    assert np.abs(preds.filter(like='prob_').to_numpy() - learner).max() < 1e-3
