"""Sphinx configuration for the offline kan_nb site.

`docs/build_docs.py` writes the sources into docs/build/source and runs Sphinx with this file;
run that script (or `make docs`) rather than sphinx-build directly.
"""
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # for quarto_anchors

project = "kan_nb"
author = "kan_nb developers"
copyright = "kan_nb developers, MIT licence"
html_title = "kan_nb"  # one line, so the sidebar fits a laptop screen without scrolling

extensions = ["myst_nb"]
exclude_patterns = ["**.ipynb_checkpoints"]

# Notebooks are committed executed: render their stored outputs, never run them here.
nb_execution_mode = "off"
# Parse Markdown outputs (and the docstrings in them) as MyST, so their `$...$` math is typeset.
nb_render_markdown_format = "myst"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 6

# Anchors as on the Quarto site (`#b_batch`, `#kan.fit`), so nbdev's links work here too.
myst_heading_slug_func = "quarto_anchors.quarto_slug"
# show_doc headings start at level 3 under a level-2 section, and chapters may skip a level.
suppress_warnings = ["myst.header"]

# MathJax 3 from the npm package, copied into _static/mathjax by build_docs.py.
mathjax_path = "mathjax/tex-chtml.js"

html_theme = "sphinx_book_theme"
html_static_path = [str(DOCS / "_static"), str(DOCS / "build" / "static")]
html_css_files = ["kan_nb.css"]
html_js_files = ["kan_nb_search.js"]
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "repository_url": "https://github.com/kan-nb/kan_nb",
    "use_repository_button": True,
    "use_download_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "show_navbar_depth": 1,
    "navigation_with_keys": False,
    # sphinx-book-theme 1.4 on pydata-sphinx-theme 0.20 otherwise adds a top bar holding
    # only a second search button.
    "navbar_persistent": [],
}
