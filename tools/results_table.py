"""Print the README's results table from the committed quick runs (checkpoints/quick/*/summary.json)."""
import json
from pathlib import Path

from sedge.cost import cost_report
from sedge.experiments import load_run

root = Path(__file__).resolve().parents[1] / "checkpoints" / "quick"
print("| data | model | classes | params (paper formula) | MMAC / 1-s clip | val acc % | test acc % | train min |")
print("|---|---|---|---|---|---|---|---|")
for d in sorted(root.iterdir()):
    s = json.loads((d / "summary.json").read_text())
    model, meta, _ = load_run(d)
    c = cost_report(model)
    print(f"| {d.name.rsplit('_', 1)[0]} | {s['model']} | {len(meta['classes'])} | {c['params_paper']:,} | "
          f"{c['mmac_per_clip']:.1f} | {100 * s['val_acc']:.1f} | {100 * s['test_acc']:.1f} | "
          f"{s['train_seconds'] / 60:.1f} |")
