"""Print the README's S-Edge results tables from the committed quick runs (checkpoints/quick/*/summary.json and
their pruning stages, plain and data-weighted)."""
import json
from pathlib import Path

from sedge.models.cost import cost_report
from sedge.pipeline.experiments import load_run

root = Path(__file__).resolve().parents[1] / "checkpoints" / "quick"
print("| data | model | classes | params (paper formula) | MMAC / 1-s clip | val acc % | test acc % | train min |")
print("|---|---|---|---|---|---|---|---|")
for d in sorted(root.iterdir()):
    if not (d / "summary.json").exists():                  # a run still training
        continue
    s = json.loads((d / "summary.json").read_text())
    if "model" not in s:                                     # a comparison baseline (chapters 06–08), not S-Edge
        continue
    model, meta, _ = load_run(d)
    c = cost_report(model)
    print(f"| {d.name.rsplit('_', 1)[0]} | {s['model']} | {len(meta['classes'])} | {c['params_paper']:,} | "
          f"{c['mmac_per_clip']:.1f} | {100 * s['val_acc']:.1f} | {100 * s['test_acc']:.1f} | "
          f"{s['train_seconds'] / 60:.1f} |")

print()
print("| data | model | budget pp | states | Δparams % | ΔMACs % | val drop pp | test before → after % | fine-tuned val / test % |")
print("|---|---|---|---|---|---|---|---|---|")
for d in sorted(root.iterdir()):
    for s_file in sorted((d / "prune").glob("params_truncate_b*_vall/summary.json")):
        s = json.loads(s_file.read_text())
        ft = s_file.parent.parent / (s_file.parent.name + "_finetune") / "summary.json"
        ft_cell = ""
        if ft.exists():
            f = json.loads(ft.read_text())
            ft_cell = f"{100 * f['val_acc']:.1f} / {100 * f['test_acc']:.1f}"
        print(f"| {d.name.rsplit('_', 1)[0]} | {d.name.rsplit('_', 1)[1]} | {s['budget_pp']:g} | {s['states_after']} | "
              f"{100 * (s['params_after'] / s['params_before'] - 1):.1f} | {100 * (s['macs_after'] / s['macs_before'] - 1):.1f} | "
              f"{s['val_acc_before'] - s['val_acc_after']:.2f} | {s['test_acc_before']:.1f} → {s['test_acc_after']:.1f} | {ft_cell} |")

print()
print("Data-weighted balanced truncation (method 'data', ours; Gramians from 128 training clips), next to the plain one:")
print("| data | model | budget pp | plain: states | plain Δparams % | weighted: states | weighted Δparams % | ΔMACs % | val drop pp | test before → after % |")
print("|---|---|---|---|---|---|---|---|---|---|")
for d in sorted(root.iterdir()):
    for s_file in sorted((d / "prune").glob("params_data128_b*_vall/summary.json")):
        s = json.loads(s_file.read_text())
        plain_file = d / "prune" / s_file.parent.name.replace("_data128_", "_truncate_") / "summary.json"
        p = json.loads(plain_file.read_text()) if plain_file.exists() else None
        plain = (f"{p['states_after']} | {100 * (p['params_after'] / p['params_before'] - 1):.1f}" if p else " | ")
        print(f"| {d.name.rsplit('_', 1)[0]} | {d.name.rsplit('_', 1)[1]} | {s['budget_pp']:g} | {plain} | {s['states_after']} | "
              f"{100 * (s['params_after'] / s['params_before'] - 1):.1f} | {100 * (s['macs_after'] / s['macs_before'] - 1):.1f} | "
              f"{s['val_acc_before'] - s['val_acc_after']:.2f} | {s['test_acc_before']:.1f} → {s['test_acc_after']:.1f} |")
