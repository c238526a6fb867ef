"""Named parameter profiles (``notebooks/profiles.yml``): per chapter, the values that differ from
the chapter's defaults, checked against the parameters the chapter declares."""
from __future__ import annotations

import yaml

from sedge.pipeline.chapters import NOTEBOOKS, source_notebooks

PROFILES = NOTEBOOKS / "profiles.yml"


def load_profile(name: str) -> dict[str, dict]:
    """A profile's values per chapter (only those that differ from the chapter's defaults), checked:
    every chapter exists and every name is one of its declared parameters with a value of its kind."""
    from sedge.pipeline.parameters import ParameterError, chapter_parameters, check_overrides
    profiles = yaml.safe_load(PROFILES.read_text())
    if name not in profiles:
        raise ValueError(f"{PROFILES}: no profile {name!r}; expected one of {sorted(profiles)}")
    chapters = profiles[name] or {}
    stems = [p.stem for p in source_notebooks()]
    for chapter, values in chapters.items():
        if chapter not in stems:
            raise ParameterError(f"{PROFILES}: profile {name!r} names chapter {chapter!r}; the chapters are {stems}")
        try:
            check_overrides(chapter, chapter_parameters(chapter), values or {})
        except ParameterError as e:
            raise ParameterError(f"{PROFILES}, profile {name!r}: {e}") from None
    return {c: v or {} for c, v in chapters.items()}


def chapter_values(profile: str, chapter: str, overrides: dict | None = None) -> dict:
    """Every parameter of ``chapter`` as it is in force at ``profile``: the chapter's defaults, then
    the profile's values, then ``overrides``."""
    from sedge.pipeline.parameters import chapter_parameters
    defaults = {n: p.default for n, p in chapter_parameters(chapter).items()}
    return {**defaults, **load_profile(profile).get(chapter, {}), **(overrides or {})}
