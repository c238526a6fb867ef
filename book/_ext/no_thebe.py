"""Sphinx extension for this book: drop sphinx-thebe's scripts and style sheet from every page.

Jupyter Book 1.x always loads sphinx-thebe; its inline configuration script is included twice per
page (a `const` declared twice: a JavaScript error on every page) and names a CDN. The book has no
live-code buttons, so nothing of thebe is needed."""


def _is_thebe(asset) -> bool:
    body = str(getattr(asset, "attributes", {}).get("body", ""))
    return "thebe" in str(asset).lower() or "THEBE" in body


def _strip(app, pagename, templatename, context, doctree):
    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not _is_thebe(a)]


def setup(app):
    app.connect("html-page-context", _strip, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
