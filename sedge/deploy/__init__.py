"""Deployment: the versioned export and the generated float and integer C++ programs."""
