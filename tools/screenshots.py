"""Screenshot built book pages with headless Chromium, as a reader sees them, cut into tiles.

    .venv/bin/python tools/screenshots.py [PAGE ...] [--out DIR] [--height PX]

PAGE is a page name under _build/html (default: every chapter). Each page is rendered at 1280 px
wide and saved as DIR/<page>_<n>.png tiles of 1280×1100 px (default DIR: _build/screenshots).
Needs Debian's `chromium` (apt-get install chromium).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / "_build" / "html"


def shoot(page: str, out: Path, height: int) -> list[Path]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    full = out / f"{page}_full.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--hide-scrollbars", "--virtual-time-budget=8000", f"--window-size=1280,{height}",
                    f"--screenshot={full}", (HTML / f"{page}.html").as_uri()],
                   check=True, capture_output=True, timeout=180)
    img = Image.open(full)
    # the page ends at the last row with ink in the content column (the sidebar's border runs on)
    import numpy as np
    ink = np.asarray(img.convert("L"))[:, 300:1000].min(axis=1) < 250
    bottom = int(np.flatnonzero(ink)[-1]) + 20 if ink.any() else img.height
    tiles = []
    for i, top in enumerate(range(0, bottom, 1100)):
        tile = out / f"{page}_{i:02d}.png"
        img.crop((0, top, 1280, min(top + 1100, bottom))).save(tile)
        tiles.append(tile)
    full.unlink()
    return tiles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pages", nargs="*")
    ap.add_argument("--out", type=Path, default=REPO / "_build" / "screenshots")
    ap.add_argument("--height", type=int, default=16000, help="render height in px (long pages need more)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    pages = a.pages or sorted(p.stem for p in HTML.glob("[0-9]*.html")) + ["intro"]
    for page in pages:
        tiles = shoot(page, a.out, a.height)
        print(f"{page}: {len(tiles)} tiles in {a.out}")


if __name__ == "__main__":
    main()
