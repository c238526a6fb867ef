"""A small transformer encoder over raw-audio frames, for convexity-guided layer pruning (SPEC §10).

The 1-s waveform is cut into non-overlapping frames of ``frame`` samples (400 = 25 ms: 40 tokens);
each frame is embedded linearly (d_model), a learned position embedding is added, ``layers``
pre-norm encoder blocks (``heads`` heads, feed-forward ``ff``) follow, and the classifier reads the
time mean of the last block's output. :meth:`features` gives every block's output, which is what
the layer-wise convexity is computed on.
"""
from __future__ import annotations

import torch
from torch import nn


class FrameTransformer(nn.Module):
    def __init__(self, n_classes: int, frame: int = 400, d_model: int = 48, heads: int = 4, ff: int = 96,
                 layers: int = 4, dropout: float = 0.1, max_frames: int = 64) -> None:
        super().__init__()
        self.frame = frame
        self.embed = nn.Linear(frame, d_model)
        self.pos = nn.Parameter(torch.zeros(1, max_frames, d_model))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(nn.TransformerEncoderLayer(d_model, heads, ff, dropout, batch_first=True,
                                                               norm_first=True) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)
        self.classifier = nn.Linear(d_model, n_classes)

    def features(self, wave: torch.Tensor) -> list[torch.Tensor]:
        """Every block's output (B, T, d_model) for waveforms (B, L); T = ⌊L / frame⌋."""
        B, L = wave.shape
        T = L // self.frame
        if T > self.pos.shape[1]:
            raise ValueError(f"FrameTransformer: {T} frames exceed max_frames={self.pos.shape[1]}")
        h = self.embed(wave[:, :T * self.frame].reshape(B, T, self.frame)) + self.pos[:, :T]
        outs = []
        for block in self.blocks:
            h = block(h)
            outs.append(h)
        return outs

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.norm(self.features(wave)[-1]).mean(dim=1))
