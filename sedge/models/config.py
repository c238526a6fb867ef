"""Model configurations of the S-Edge zoo as plain data (SPEC §3).

Each entry gives the number of layers, complex states ``P`` and output width ``H``
per layer, whether the skip path is a trainable matrix (else identity), whether a
pre-norm BatchNorm sits on the SSM branch, and the initialisation scheme.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

N_CLASSES_GSC = 35


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one S-Edge classifier (SPEC §1, §3)."""

    name: str
    states: tuple[int, ...]          # P per layer (complex states)
    widths: tuple[int, ...]          # H per layer (output channels)
    trainable_skip: bool
    batchnorm: bool
    init: str                        # "orthogonal" or "s5"
    n_classes: int = N_CLASSES_GSC
    dropout: float = 0.0
    rzoh: bool = True                # random zero-order hold during training (SPEC §2)

    def __post_init__(self) -> None:
        if len(self.states) != len(self.widths) or not self.states:
            raise ValueError(f"model {self.name!r}: states {self.states} and widths {self.widths} "
                             "must be non-empty and of equal length")
        if self.init not in ("orthogonal", "s5"):
            raise ValueError(f"model {self.name!r}: init must be 'orthogonal' or 's5', got {self.init!r}")
        if not self.trainable_skip and len(set(self.widths)) != 1:
            raise ValueError(f"model {self.name!r}: an identity skip needs equal widths, got {self.widths}")

    @property
    def n_layers(self) -> int:
        return len(self.states)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        d["states"] = tuple(d["states"])
        d["widths"] = tuple(d["widths"])
        return cls(**d)


ZOO: dict[str, ModelConfig] = {
    "full": ModelConfig("full", (64,) * 6, (96,) * 6, trainable_skip=False, batchnorm=False, init="s5"),
    "l": ModelConfig("l", (96, 80, 64, 48, 32, 16), (24, 32, 40, 48, 56, 64), True, True, "orthogonal"),
    "m": ModelConfig("m", (96, 64, 32), (24, 44, 64), True, True, "orthogonal"),
    "s": ModelConfig("s", (32, 24, 16, 14, 12, 8), (8, 16, 32, 42, 54, 64), True, True, "orthogonal"),
    "tiny": ModelConfig("tiny", (32, 16, 8), (8, 32, 64), True, True, "orthogonal"),
}

# Parameter counts reported in the paper (SPEC §3), used by the tests and the book.
PAPER_PARAMS: dict[str, int] = {"full": 141_381, "l": 56_333, "m": 27_621, "s": 20_377, "tiny": 8_413}


def model_config(name: str, n_classes: int = N_CLASSES_GSC, **overrides) -> ModelConfig:
    """Return the zoo configuration ``name`` for ``n_classes`` outputs."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(ZOO)}")
    d = ZOO[name].to_dict()
    d.update(n_classes=n_classes, **overrides)
    return ModelConfig.from_dict(d)


@dataclass
class TrainConfig:
    """Training recipe (SPEC §4)."""

    lr: float = 0.002                # η for the SSM group; 4η for the rest
    weight_decay: float = 0.04       # for skip, BN and decoder
    batch_size: int = 16
    epochs: int = 40
    warmup_steps: int = 100
    seed: int = 1234
    ortho_reg: float = 0.1           # decoder orthogonality penalty weight
    num_workers: int = 0
    max_steps_per_epoch: int | None = None
    augment: dict | None = None      # sedge.data.augment.Augment fields; None: no augmentation (the paper)
    extra: dict = field(default_factory=dict)

    def same_run(self, saved: dict) -> bool:
        """Whether a run saved with ``saved`` (asdict of an older TrainConfig, possibly without the
        fields added since, which then take their defaults) continues under this configuration."""
        return {**asdict(TrainConfig()), **saved} == asdict(self)
