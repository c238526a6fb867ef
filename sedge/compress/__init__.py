"""The compression methods: balanced truncation and the greedy pruning search (S-Edge), fixed point,
similarity-based filter pruning, graph convexity and convexity-guided layer pruning, and the
pruning/quantisation path compared with XNOR-Net. A new method is one module here."""
