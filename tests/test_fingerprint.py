"""The code fingerprint follows the modules a chapter imports, not their prose."""
from sedge.pipeline.fingerprint import chapter_roots, closure, fingerprint


def make_package(root):
    pkg = root / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""The package."""\n')
    (pkg / "a.py").write_text('"""Module a."""\nfrom .b import g\n\ndef f(x):\n    """f(x) = g(x) + 1."""\n    return g(x) + 1\n')
    (pkg / "b.py").write_text("def g(x):\n    from .sub import h   # imported inside the function\n    return h(x)\n")
    (pkg / "sub" / "__init__.py").write_text("from .core import h\n")
    (pkg / "sub" / "core.py").write_text("def h(x):\n    return 2 * x\n")
    (pkg / "sub" / "kernel.cpp").write_text("int k() { return 1; }\n")
    (pkg / "unrelated.py").write_text("def u():\n    return 0\n")
    return pkg


def test_closure_follows_imports_at_any_depth_and_parent_packages(tmp_path):
    make_package(tmp_path)
    assert closure(["pkg.a"], "pkg", tmp_path) == {"pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.core"}
    assert chapter_roots(["import numpy\nfrom pkg.a import f\n%matplotlib inline\n"], "pkg", tmp_path) == {"pkg.a"}


def test_fingerprint_ignores_prose_and_follows_code(tmp_path):
    pkg = make_package(tmp_path)
    fp = lambda: fingerprint(["pkg.a"], "pkg", tmp_path)
    before = fp()
    a = pkg / "a.py"
    a.write_text(a.read_text().replace("f(x) = g(x) + 1.", "Adds one to g.") + "# a comment\n")
    assert fp() == before                                       # docstring and comment edits: nothing stale
    (pkg / "unrelated.py").write_text("def u():\n    return 1\n")
    assert fp() == before                                       # a module the chapter does not reach
    core = pkg / "sub" / "core.py"
    core.write_text(core.read_text().replace("2 * x", "3 * x"))
    changed = fp()
    assert changed != before                                    # code reached through a function-level import
    (pkg / "sub" / "kernel.cpp").write_text("int k() { return 2; }\n")
    assert fp() != changed                                      # a package's non-Python source counts


def test_fingerprint_follows_content_not_location(tmp_path):
    """Moving a module into another package (imports rewritten, the stage's list of module names
    too) leaves the fingerprint; a change of what the moved code computes does not."""
    pkg = make_package(tmp_path)
    (pkg / "a.py").write_text((pkg / "a.py").read_text() + 'CODE = ("pkg.b",)\n')
    before = fingerprint(["pkg.a"], "pkg", tmp_path)
    (pkg / "models").mkdir()
    (pkg / "models" / "__init__.py").write_text('"""Models: a package that only groups modules."""\n')
    b = (pkg / "b.py").read_text().replace("from .sub import h", "from pkg.sub import h")
    (pkg / "b.py").unlink()
    (pkg / "models" / "b.py").write_text(b)
    a = pkg / "a.py"
    a.write_text(a.read_text().replace("from .b import g", "from .models.b import g").replace('"pkg.b"', '"pkg.models.b"'))
    assert closure(["pkg.a"], "pkg", tmp_path) == {"pkg", "pkg.a", "pkg.models", "pkg.models.b", "pkg.sub", "pkg.sub.core"}
    assert fingerprint(["pkg.a"], "pkg", tmp_path) == before     # same code, another place
    (pkg / "models" / "b.py").write_text(b.replace("return h(x)", "return h(x) + 0"))
    assert fingerprint(["pkg.a"], "pkg", tmp_path) != before     # the moved code itself changed
    (pkg / "models" / "b.py").write_text(b)
    (pkg / "models" / "__init__.py").write_text("X = 1\n")
    assert fingerprint(["pkg.a"], "pkg", tmp_path) != before     # a package __init__ that runs code counts
