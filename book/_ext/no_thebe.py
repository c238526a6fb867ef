"""Sphinx extension for this book: the scripts of every page, cleaned.

- sphinx-thebe's scripts and style sheet are dropped. Jupyter Book 1.x always loads sphinx-thebe;
  its inline configuration script is included twice per page (a `const` declared twice: a
  JavaScript error on every page) and names a CDN. The book has no live-code buttons.
- A script file listed twice is kept once (the first, which carries its `defer`): myst-nb adds
  the MathJax file again for pages whose notebook outputs hold math, after Sphinx's own copy.
"""


def _is_thebe(asset) -> bool:
    body = str(getattr(asset, "attributes", {}).get("body", ""))
    return "thebe" in str(asset).lower() or "THEBE" in body


def _once(assets):
    seen, out = set(), []
    for a in assets:
        name = str(getattr(a, "filename", a) or "").split("?", 1)[0]     # Sphinx's _JavaScript / _CascadingStyleSheet
        if name and name in seen:
            continue
        if name:
            seen.add(name)
        out.append(a)
    return out


def _strip(app, pagename, templatename, context, doctree):
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = _once([a for a in context[key] if not _is_thebe(a)])


def setup(app):
    app.connect("html-page-context", _strip, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
