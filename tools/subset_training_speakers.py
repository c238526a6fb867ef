"""A copy (by symbolic links) of a Speech-Commands-layout folder that keeps only a fraction of the
training speakers and every validation and test clip: the data-size ablation of
``checkpoints/ablations/README.md``.

The folder loader splits by a hash h(speaker) ∈ [0, 1): train if h < 0.8, validation if h < 0.9,
else test (``sedge.data.base.speaker_split``). Keeping the training speakers with h < 0.8·f keeps a
fraction f of them — a fixed, seed-free subset — while the validation and test splits are exactly
those of the full folder, so accuracies are comparable clip for clip.

    python tools/subset_training_speakers.py --fraction 0.5 --out /tmp/mini_train50
    sedge train --data mini:/tmp/mini_train50 ...
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sedge.data.folder import scan_folder
from sedge.data.base import speaker_split
from sedge.paths import MINI_SPEECH_COMMANDS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=MINI_SPEECH_COMMANDS,
                    help="the full folder (default: the real 8-word excerpt)")
    ap.add_argument("--fraction", type=float, required=True, help="fraction of training speakers kept, in (0, 1]")
    ap.add_argument("--out", type=Path, required=True, help="new folder of links (must not exist)")
    a = ap.parse_args(argv)
    if not 0 < a.fraction <= 1:
        ap.error(f"--fraction {a.fraction}: expected a number in (0, 1]")
    if a.out.exists():
        ap.error(f"--out {a.out}: already exists; expected a new folder")
    kept = {"train": 0, "val": 0, "test": 0}
    dropped = 0
    for path, label, speaker in scan_folder(a.root):
        split = speaker_split(speaker)
        # the same hash with the training fraction scaled: "train" iff h < 0.8·f
        if split == "train" and speaker_split(speaker, (0.8 * a.fraction, 0.0)) != "train":
            dropped += 1
            continue
        kept[split] += 1
        link = a.out / label / path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path.resolve())
    print(f"{a.out}: kept {kept['train']} training clips (dropped {dropped}), "
          f"{kept['val']} validation and {kept['test']} test clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
