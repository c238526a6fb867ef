"""Training and reading back: the paper's recipe for S-Edge and the same loop for the baselines,
devices, and the one reader of every family's checkpoints."""
