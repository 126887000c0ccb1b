"""Write README.md from nbs/index.ipynb.

nbdev's own `nbdev-readme` renders through Quarto, which cannot be installed
on this project's machines, so this script converts the notebook with
nbconvert's markdown exporter after applying nbdev's cell directives.
"""
from pathlib import Path

import re

import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parent.parent


def _directives(cell):
    "Return the `#|` directives at the top of a code cell as a dict of name to value."
    found = {}
    for line in cell.source.splitlines():
        if not line.startswith("#|"):
            break
        name, _, value = line[2:].strip().partition(":")
        name = name.split(" ")[0].strip()
        found[name] = value.strip() or line[2:].strip()[len(name):].strip()
    return found


def _strip_directives(source):
    return "\n".join(l for l in source.splitlines() if not l.startswith("#|")).strip()


def build_readme(nb_path=ROOT / "nbs" / "index.ipynb"):
    "Return the README markdown for the notebook at `nb_path`."
    nb = nbformat.read(nb_path, as_version=4)
    kept = []
    for cell in nb.cells:
        if cell.cell_type == "raw":
            continue
        if cell.cell_type == "code":
            directives = _directives(cell)
            if directives.keys() & {"hide", "default_exp", "export", "exporti"} or directives.get("include") == "false":
                continue
            cell.source = _strip_directives(cell.source)
            if directives.get("echo") == "false":
                cell.source = ""
        kept.append(cell)
    nb.cells = kept
    nb.metadata['language_info'] = {'name': 'python'}  # fence code blocks as python
    body, _ = MarkdownExporter(exclude_input_prompt=True, exclude_output_prompt=True).from_notebook_node(nb)
    # chapter links are relative to nbs/, where the docs site has them; in the repository README they need the folder
    body = re.sub(r"\]\((?!https?://|#|nbs/)([\w.-]+\.ipynb)\)", r"](nbs/\1)", body)
    return body.strip() + "\n"


if __name__ == "__main__":
    (ROOT / "README.md").write_text(build_readme())
