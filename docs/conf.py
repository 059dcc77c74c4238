"""Sphinx configuration of the exopk documentation (``make docs``; warnings are errors)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import exopk  # noqa: E402

project = "exopk"
author = "exopk contributors"
copyright = "exopk contributors, MIT licence"
release = version = exopk.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "exopk_docgen",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
# model.md and validation.md are pulled into generated pages with {include}; the rest is not documentation.
exclude_patterns = ["_build", "_ext", "model.md", "validation.md"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc docstrings carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_theme_options = {"page_width": "1240px", "sidebar_width": "220px"}
html_title = f"exopk {release}"
html_static_path: list[str] = []
suppress_warnings: list[str] = []
