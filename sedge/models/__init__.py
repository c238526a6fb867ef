"""The networks: the S-Edge layer (its maths in :mod:`.layer`), the chunked scan and the fused CPU
kernel, the zoo as plain data, initialisation, parameter and MAC counts, a look inside trained
layers, and the architectures of the comparison baselines (DCASE CNN, ACDNet, frame transformer)."""
