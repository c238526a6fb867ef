"""The DCASE 2021 Task 1A baseline CNN on log-mel input, sized for 1-s keyword clips (SPEC §10).

Input: 40 log-mel bands × 50 frames (16 kHz, 40 ms window, 20 ms hop, centred frames cropped to
50), shape (1, 40, 50). C1 Conv 16@7×7 same → BN → ReLU; C2 Conv 16@7×7 same → BN → ReLU →
MaxPool 5×5 → Dropout 0.3; C3 Conv 32@7×7 same → BN → ReLU → MaxPool 4×10 → Dropout 0.3;
Flatten (32·2·1) → Dense 100 (ReLU) → Dense n_classes. The second pool is 4×10 instead of the
paper's 4×100 because 1 s has 50 frames, not 500; the flattened size (64) and hence the parameter
count (46,246 at 10 classes, counting BN's 4 numbers per channel as Keras does) are the paper's.
"""
from __future__ import annotations

import torch
from torch import nn

N_MELS, FRAMES = 40, 50


class LogMel(nn.Module):
    """log(mel + 1e-6) of a 16 kHz waveform: (B, 16000) → (B, 1, 40, 50)."""

    def __init__(self) -> None:
        super().__init__()
        import torchaudio
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_fft=640, win_length=640,
                                                        hop_length=320, n_mels=N_MELS, center=True)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return torch.log(self.mel(wave)[..., :FRAMES] + 1e-6).unsqueeze(1)


class DcaseCNN(nn.Module):
    def __init__(self, n_classes: int = 10, channels: tuple[int, int, int] = (16, 16, 32), dense: int = 100,
                 dropout: float = 0.3) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.features = LogMel()
        self.conv1, self.bn1 = nn.Conv2d(1, c1, 7, padding=3), nn.BatchNorm2d(c1)
        self.conv2, self.bn2 = nn.Conv2d(c1, c2, 7, padding=3), nn.BatchNorm2d(c2)
        self.pool2, self.drop2 = nn.MaxPool2d((5, 5)), nn.Dropout(dropout)
        self.conv3, self.bn3 = nn.Conv2d(c2, c3, 7, padding=3), nn.BatchNorm2d(c3)
        self.pool3, self.drop3 = nn.MaxPool2d((4, 10)), nn.Dropout(dropout)
        self.fc1 = nn.Linear(c3 * 2 * 1, dense)
        self.fc2 = nn.Linear(dense, n_classes)

    def conv_stack(self, x: torch.Tensor, masks: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
        """Log-mel (B, 1, 40, 50) → flattened features; ``masks`` zeroes channels after conv ℓ's ReLU."""
        masks = masks or {}
        def block(i, conv, bn, h):
            h = torch.relu(bn(conv(h)))
            return h * masks[i][None, :, None, None] if i in masks else h
        h = block(1, self.conv1, self.bn1, x)
        h = self.drop2(self.pool2(block(2, self.conv2, self.bn2, h)))
        h = self.drop3(self.pool3(block(3, self.conv3, self.bn3, h)))
        return h.flatten(1)

    def forward(self, wave: torch.Tensor, masks: dict[int, torch.Tensor] | None = None) -> torch.Tensor:
        h = self.conv_stack(self.features(wave), masks)
        return self.fc2(torch.relu(self.fc1(h)))

    @property
    def channels(self) -> tuple[int, int, int]:
        return (self.conv1.out_channels, self.conv2.out_channels, self.conv3.out_channels)


def keras_param_count(model: DcaseCNN) -> int:
    """Parameters as Keras (and the paper) count them: BN contributes 4 numbers per channel."""
    n = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("bn"))
    return n + 4 * sum(model.channels)


def conv_macs(model: DcaseCNN) -> dict[str, int]:
    """Multiply-accumulates of each conv layer for one clip ('same' padding: output = input size)."""
    sizes = {1: (N_MELS, FRAMES), 2: (N_MELS, FRAMES), 3: (N_MELS // 5, FRAMES // 5)}
    out = {}
    for i, conv in ((1, model.conv1), (2, model.conv2), (3, model.conv3)):
        h, w = sizes[i]
        out[f"conv{i}"] = conv.out_channels * conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1] * h * w
    out["dense"] = model.fc1.in_features * model.fc1.out_features + model.fc2.in_features * model.fc2.out_features
    out["total"] = sum(out.values())
    return out
