"""Training-time augmentation of normalised waveform batches (training clips only).

For every clip of a batch, in this order, with draws from one seeded ``torch.Generator`` (the
trainer seeds it from the run seed and the global step, so a resumed run draws the same):

* speed:  resample by a factor f ~ U(1 − speed, 1 + speed) (linear interpolation to ⌊L/f⌉ samples),
  then crop or zero-pad at the end back to L;
* shift:  delay by s ~ U{−shift·16000, …, +shift·16000} samples, zero-filled;
* gain:   multiply by 10^(g/20), g ~ U(−gain_db, gain_db);
* noise:  with probability ``noise_p``, add white Gaussian noise at SNR ~ U(snr_min_db, snr_max_db)
  relative to the clip's own power, x ← x + n·√(mean(x²) / 10^(SNR/10)).

``--augment`` on the command line takes ``none`` (default: the paper's recipe), ``default`` (the
values below) or ``key=value`` pairs, e.g. ``shift=0.1,gain=6,noise_p=0.5,snr_min_db=10,speed=0.1``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

from sedge.data.base import SAMPLE_RATE, DataError


@dataclass(frozen=True)
class Augment:
    shift: float = 0.1              # seconds, either way
    gain_db: float = 6.0
    noise_p: float = 0.5
    snr_min_db: float = 10.0
    snr_max_db: float = 30.0
    speed: float = 0.1

    def __post_init__(self) -> None:
        checks = {"shift": 0 <= self.shift < 1, "gain_db": self.gain_db >= 0, "noise_p": 0 <= self.noise_p <= 1,
                  "snr_max_db": self.snr_max_db >= self.snr_min_db, "speed": 0 <= self.speed < 0.5}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise DataError(f"augmentation option(s) {bad} out of range in {self}: expected 0 ≤ shift < 1 s, "
                            "gain_db ≥ 0, 0 ≤ noise_p ≤ 1, snr_max_db ≥ snr_min_db, 0 ≤ speed < 0.5")

    def to_dict(self) -> dict:
        return asdict(self)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Augmented copy of the batch ``x`` (B, L); ``x`` is not modified."""
        B, L = x.shape
        u = lambda *shape: torch.rand(*shape, generator=g, dtype=torch.float64)  # noqa: E731
        out = torch.zeros_like(x)
        factors = 1 + (2 * u(B) - 1) * self.speed
        max_shift = int(self.shift * SAMPLE_RATE)
        shifts = torch.randint(-max_shift, max_shift + 1, (B,), generator=g) if max_shift else torch.zeros(B, dtype=torch.long)
        for i in range(B):
            clip = x[i]
            if self.speed:
                n = max(2, int(round(L / float(factors[i]))))
                clip = F.interpolate(clip[None, None], size=n, mode="linear", align_corners=True)[0, 0][:L]
            s = int(shifts[i])
            src = clip[max(0, -s):]
            m = min(len(src), L - max(0, s))
            if m > 0:
                out[i, max(0, s):max(0, s) + m] = src[:m]
        gains = 10 ** ((2 * u(B) - 1) * self.gain_db / 20)
        out *= gains.to(x.dtype)[:, None]
        snr = self.snr_min_db + u(B) * (self.snr_max_db - self.snr_min_db)
        use = (u(B) < self.noise_p).to(x.dtype)
        power = out.pow(2).mean(1)
        scale = torch.sqrt(power.double() / 10 ** (snr / 10)).to(x.dtype) * use
        return out + torch.randn(B, L, generator=g, dtype=x.dtype) * scale[:, None]


def parse_augment(spec: str | None) -> Augment | None:
    """``none``/empty → None, ``default`` → Augment(), else ``key=value,…`` over Augment's fields."""
    spec = (spec or "none").strip()
    if spec in ("none", "off", ""):
        return None
    if spec in ("default", "on"):
        return Augment()
    names = {f.name for f in fields(Augment)}
    values = {}
    for item in filter(None, spec.split(",")):
        key, eq, value = item.partition("=")
        if not eq or key not in names:
            raise DataError(f"--augment {item!r}: expected none, default or key=value with key in {sorted(names)}")
        try:
            values[key] = float(value)
        except ValueError:
            raise DataError(f"--augment {key}={value!r}: expected a number") from None
    return Augment(**values)
