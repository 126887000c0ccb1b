"""Build the kan_nb documentation site into `_docs/`.

Where the `quarto` binary is on PATH this runs nbdev's own `nbdev-docs`, which renders the
standard nbdev site from `_quarto.yml`. Quarto's PyPI package downloads its binary at install
time, so on machines without it this script renders nbdev's processed notebooks (`_proc/`,
as `nbdev-proc-nbs` makes them) with Sphinx, myst-nb and sphinx-book-theme instead. That stack was
chosen because it installs from PyPI, reads notebooks with their stored outputs, ships its own
offline full-text search, and builds the site in seconds. MkDocs Material also works, but it
needs a hand-made MathJax loader and leaves `.ipynb` links broken.

Sphinx cannot read `_proc/` as it is, so each processed notebook is rewritten first.
- The frontmatter raw cell becomes the page title and summary.
- Quarto cell options (`#| echo: false`, ...) become myst-nb tags.
- Markdown outputs (what `show_doc` prints) become Markdown cells, as Quarto renders them.
- Quarto callouts become MyST admonitions.
- Links to `NN_name.ipynb` point to the renamed page.

Pages and headings keep the names and anchors of the Quarto site (`bspline.html#b_batch`,
see docs/quarto_anchors.py), so the links in `kan_nb/_modidx.py` work on both sites.
MathJax comes from the npm package `mathjax` and is copied into the site, so pages need no
network to show formulas.

Usage: python docs/build_docs.py [--sphinx] [--out DIR]
"""
import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BUILD = DOCS / "build"  # generated Sphinx sources, doctrees and the staged MathJax copy
SOURCE = BUILD / "source"
STATIC_EXTRA = BUILD / "static"

MATHJAX_VERSION = "3.2.2"
# The parts of MathJax's es5 folder that `tex-chtml.js` uses: its fonts, and the TeX
# extensions, accessibility modules and speech engine (sre) that it loads on demand.
# The other combined bundles are left out.
MATHJAX_PARTS = ["tex-chtml.js", "input", "output", "a11y", "ui", "adaptors", "sre"]

EXAMPLES_FROM = 20  # notebooks numbered 20 and above are worked examples
CALLOUT_KINDS = {"note", "tip", "warning", "important", "caution"}


def log(message):
    print(f"[docs] {message}", flush=True)


def run(cmd, **kwargs):
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


# ---------------------------------------------------------------- Quarto path


def build_with_quarto(out):
    """Render the standard nbdev site with Quarto, then move it to `out`.

    nbdev writes nbs/nbdev.yml and (below) nbs/sidebar.yml for Quarto. Those that this build
    created are removed afterwards, so it leaves no untracked file in nbs/.
    """
    nbs = ROOT / "nbs"
    generated = [f for f in (nbs / "nbdev.yml", nbs / "sidebar.yml") if not f.exists()]
    try:
        # _quarto.yml lists sidebar.yml in `metadata-files`; generate it if none is committed.
        if not (nbs / "sidebar.yml").exists():
            run(["nbdev-sidebar", "--force"], cwd=ROOT)
        run(["nbdev-docs"], cwd=ROOT)
    finally:
        for path in generated:
            path.unlink(missing_ok=True)
    if out.resolve() != (ROOT / "_docs").resolve():
        shutil.rmtree(out, ignore_errors=True)
        shutil.move(ROOT / "_docs", out)


# ---------------------------------------------------------------- nbdev processing


def process_notebooks():
    """Run nbdev's notebook processing (`show_doc` output, hidden cells removed) into `_proc/`.

    This calls `nbdev.quarto.proc_nbs` rather than the `nbdev-proc-nbs` command, because the
    command first tries to download and install Quarto when it is missing.
    """
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    try:
        run([sys.executable, "-c", "from nbdev.quarto import proc_nbs; proc_nbs()"], cwd=ROOT, env=env)
    except subprocess.CalledProcessError:
        raise SystemExit(
            "nbdev could not process the notebooks (its error is printed above). nbdev runs the "
            "export cells, the show_doc cells and every cell that contains an import to render "
            "show_doc; a cell that mixes an import with code which needs an unexported helper "
            "fails there. Move such imports into the notebook's imports cell.") from None
    return ROOT / "_proc"


def read_frontmatter(nb):
    """Return the YAML mapping of the notebook's leading raw `---` cell, or {}."""
    if not nb["cells"] or nb["cells"][0]["cell_type"] != "raw":
        return {}
    text = "".join(nb["cells"][0]["source"]).strip()
    if not text.startswith("---"):
        return {}
    return yaml.safe_load(text.strip("-\n")) or {}


def page_stem(rel_path, frontmatter):
    """Page name of a notebook: nbdev's `output-file` without `.html`, else the file stem."""
    output_file = frontmatter.get("output-file")
    name = Path(output_file).stem if output_file else rel_path.stem
    return (rel_path.parent / name).as_posix()


def chapter_number(rel_path):
    match = re.match(r"(\d+)_", rel_path.name)
    return int(match.group(1)) if match else None


class Page:
    """One processed notebook and where it goes in the site."""

    def __init__(self, proc_dir, path):
        self.rel = path.relative_to(proc_dir)
        self.nb = json.loads(path.read_text(encoding="utf-8"))
        self.frontmatter = read_frontmatter(self.nb)
        self.stem = page_stem(self.rel, self.frontmatter)
        self.title = str(self.frontmatter.get("title") or self.rel.stem)
        self.number = chapter_number(self.rel)

    @property
    def is_home(self):
        return self.rel.as_posix() == "index.ipynb"

    @property
    def is_example(self):
        return self.number is not None and self.number >= EXAMPLES_FROM

    def sort_key(self):
        # Book order: home page, numbered notebooks by number, then the rest by name.
        return (not self.is_home, self.number is None, self.number or 0, self.rel.as_posix())


def collect_pages(proc_dir):
    pages = [Page(proc_dir, p) for p in proc_dir.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    pages.sort(key=Page.sort_key)
    stems = [p.stem for p in pages]
    duplicates = {s for s in stems if stems.count(s) > 1}
    if duplicates:
        raise SystemExit(f"Two notebooks would become the same page {sorted(duplicates)}: "
                         "give them different `output-file` names or file names.")
    if not any(p.is_home for p in pages):
        raise SystemExit("nbs/index.ipynb is missing: it is the home page of the site.")
    return pages


# ---------------------------------------------------------------- notebook rewriting

DIRECTIVE_RE = re.compile(r"^#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")
CALLOUT_OPEN_RE = re.compile(r"^(:{3,})\s*\{\.callout-(\w+)([^}]*)\}\s*$")
CALLOUT_TITLE_ATTR_RE = re.compile(r'title\s*=\s*"([^"]*)"')


def split_directives(source):
    """Split Quarto cell options (`#| key: value` lines at the top) from the code."""
    lines = source.splitlines()
    directives = {}
    while lines and lines[0].startswith("#|"):
        match = DIRECTIVE_RE.match(lines.pop(0))
        if match:
            directives[match.group(1)] = match.group(2).strip().strip("'\"").lower()
    return directives, "\n".join(lines)


def convert_callouts(markdown):
    """Turn Quarto callouts (`::: {.callout-note}` ... `:::`) into MyST admonitions."""
    lines = markdown.split("\n")
    result = []
    i = 0
    while i < len(lines):
        match = CALLOUT_OPEN_RE.match(lines[i])
        if not match:
            result.append(lines[i])
            i += 1
            continue
        fence, kind, attrs = match.groups()
        kind = kind if kind in CALLOUT_KINDS else "note"
        title_match = CALLOUT_TITLE_ATTR_RE.search(attrs)
        title = title_match.group(1) if title_match else None
        i += 1
        # A callout's first `##` heading is its title in Quarto.
        if title is None and i < len(lines) and re.match(r"^#{1,6}\s+", lines[i]):
            title = re.sub(r"^#{1,6}\s+", "", lines[i]).strip()
            i += 1
        if title:
            result += [f"{fence}{{admonition}} {title}", f":class: {kind}"]
        else:
            result.append(f"{fence}{{{kind}}}")
    return "\n".join(result)


def rewrite_links(markdown, renames):
    """Point Markdown links to `NN_name.ipynb` at the page that notebook became."""
    def replace(match):
        path, anchor = match.group(1), match.group(2) or ""
        return f"]({renames[path]}.ipynb{anchor}" if path in renames else match.group(0)
    return re.sub(r"\]\(([^)\s#]+\.ipynb)(#[^)\s]*)?", replace, markdown)


def markdown_cell(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code_cell(source, outputs, tags):
    return {"cell_type": "code", "execution_count": None, "metadata": {"tags": sorted(tags)} if tags else {},
            "outputs": outputs, "source": source}


def markdown_of(output):
    """Return the Markdown text of a display or execute_result output, or None."""
    if output.get("output_type") not in ("display_data", "execute_result"):
        return None
    text = output.get("data", {}).get("text/markdown")
    return "".join(text) if text is not None else None


# nbdev's `show_doc` Markdown: a horizontal rule, then a heading with the name.
SHOWDOC_RE = re.compile(r"\A\s*---\s*\n\s*(#{2,6})\s+(\S[^\n]*?)\s*\n")


class ApiEntries:
    """Public names of `kan_nb`, as nbdev's `_modidx.py` and the modules' `__all__` list them."""

    def __init__(self, root):
        self.by_link = {}  # 'bspline.html#b_batch' -> 'kan_nb.bspline.B_batch'
        self.modules = {}  # 'kan_nb.bspline' -> {'page': 'bspline', 'names': [...], 'all': [...]}
        modidx_path = root / "kan_nb" / "_modidx.py"
        namespace = {}
        exec(modidx_path.read_text(encoding="utf-8"), namespace)
        for module, syms in namespace["d"]["syms"].items():
            entry = self.modules.setdefault(module, {"page": None, "names": [], "all": []})
            for qualname, (link, _source) in syms.items():
                self.by_link[link] = qualname
                entry["page"] = entry["page"] or link.split(".html")[0]
                entry["names"].append(qualname)
            source = root / (module.replace(".", "/") + ".py")
            if source.exists():
                entry["all"] = module_all(source)
        self.labelled = {}  # qualname -> (page stem, summary) of each `show_doc` entry written

    def label_for(self, page_stem, heading):
        """Return the qualified name that a `show_doc` heading on this page documents, or None."""
        return self.by_link.get(f"{page_stem}.html#{heading.lower()}")


def module_all(path):
    """Read the names in a module's `__all__` without importing the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return []


def showdoc_markdown(markdown, page_stem, api):
    """Restyle a `show_doc` output as a labelled heading and an `api-entry` box.

    Markdown that `show_doc` did not print is returned unchanged."""
    match = SHOWDOC_RE.match(markdown)
    if not match:
        return markdown
    # The leading rule is dropped: docutils rejects a transition that starts a section, and
    # the box's border separates the entry instead.
    level, name = match.group(1), match.group(2).strip("`")
    body = markdown[match.end():].strip("\n")
    qualname = api.label_for(page_stem, name)
    parts = []
    if qualname and qualname not in api.labelled:
        summary = re.search(r"^\*(.+)\*\s*$", body, re.M)
        api.labelled[qualname] = (page_stem, summary.group(1) if summary else "")
        parts.append(f"({qualname})=")
    parts.append(f"{level} `{name}`")
    if body and not re.search(r"^#", body, re.M) and ":::" not in body:
        body = f"::::{{container}} api-entry\n{body}\n::::"
    parts.append(body)
    return "\n".join(parts) + "\n"


def convert_notebook(page, renames, api):
    """Rewrite one processed notebook into a notebook that myst-nb renders as Quarto would."""
    cells = []
    fm = page.frontmatter
    if fm:
        header = f"# {page.title}\n"
        if fm.get("description"):
            header += f"\n:::{{container}} chapter-description\n{fm['description']}\n:::\n"
        cells.append(markdown_cell(header))

    for cell in page.nb["cells"][1 if fm else 0:]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "raw":
            continue
        if cell["cell_type"] == "markdown":
            if source.strip().startswith("<!-- WARNING: THIS FILE WAS AUTOGENERATED"):
                continue
            cells.append(markdown_cell(rewrite_links(convert_callouts(source), renames)))
            continue

        directives, code = split_directives(source)
        if directives.get("include") == "false":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        if directives.get("echo") == "false":
            tags.add("remove-input")
        if directives.get("output") == "false":
            tags.add("remove-output")
        show_code = "remove-input" not in tags and code.strip()

        # Quarto renders Markdown outputs as part of the page, so a heading printed by
        # `show_doc` is a real section there. Split the cell at each Markdown output: the code
        # with the outputs before it, the Markdown, then a code-less cell for later outputs.
        segment_source, segment_tags, segment_shown = code, tags, bool(show_code)
        segment_outputs = []
        for output in cell.get("outputs", []):
            md = None if "remove-output" in tags else markdown_of(output)
            if md is None:
                segment_outputs.append(output)
                continue
            if segment_shown or segment_outputs:
                cells.append(code_cell(segment_source, segment_outputs, segment_tags))
            cells.append(markdown_cell(rewrite_links(showdoc_markdown(md, page.stem, api), renames)))
            segment_source, segment_tags, segment_shown = "", {"remove-input"}, False
            segment_outputs = []
        if segment_shown or segment_outputs:
            cells.append(code_cell(segment_source, segment_outputs, segment_tags))

    metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python", "pygments_lexer": "ipython3"},
    }
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


# ---------------------------------------------------------------- generated pages


def toctree(caption, stems):
    lines = ["```{toctree}", ":hidden:", ":maxdepth: 1", f":caption: {caption}", ""]
    return "\n".join(lines + stems + ["```", ""])


def api_page(pages, api):
    """Return the API index in Markdown (every public name, linked to its `show_doc` entry)
    and the public names that have no entry of their own."""
    titles = {p.stem: p.title for p in pages}
    order = {p.stem: i for i, p in enumerate(pages)}
    lines = ["# API reference", "",
             "Every public name of the `kan_nb` package, with a link to its entry in the chapter "
             "that defines it. Methods added to a class by a later chapter (with fastcore's "
             "`@patch`) are listed under that chapter's module.", ""]
    missing = []
    modules = sorted(api.modules.items(), key=lambda kv: (order.get(kv[1]["page"], 1e9), kv[0]))
    for module, info in modules:
        public = [q for q in info["names"] if not any(part.startswith("_") for part in q.split(".")[2:])]
        extra = [q for q, _ in api.labelled.items() if q.startswith(module + ".") and q not in public]
        documented = public + extra
        constants = [n for n in info["all"] if f"{module}.{n}" not in info["names"]]
        if not documented and not constants:
            continue
        page = info["page"]
        lines += [f"## `{module}`", "", f"Chapter: [{titles.get(page, page)}]({page}.ipynb)", "",
                  "| name | summary |", "|---|---|"]
        for qualname in documented:
            short = qualname[len(module) + 1:]
            if qualname in api.labelled:
                summary = api.labelled[qualname][1].replace("|", "\\|")
                lines.append(f"| {{ref}}`{short} <{qualname}>` | {summary} |")
            else:
                missing.append(qualname)
                owner = f"{module}.{short.split('.')[0]}"
                link = f"{{ref}}`{short} <{owner}>`" if owner in api.labelled else f"`{short}`"
                lines.append(f"| {link} | no entry of its own yet |")
        for name in constants:
            lines.append(f"| [`{name}`]({page}.ipynb) | module constant |")
        lines.append("")
    return "\n".join(lines), missing


def write_source(pages, api):
    """Write the Sphinx source folder: rewritten notebooks, other files, the API page."""
    shutil.rmtree(SOURCE, ignore_errors=True)
    SOURCE.mkdir(parents=True)
    renames = {p.rel.as_posix(): p.stem for p in pages}
    converted = {p.stem: convert_notebook(p, renames, api) for p in pages}

    chapters = [p.stem for p in pages if not p.is_home and not p.is_example]
    examples = [p.stem for p in pages if p.is_example]
    nav = toctree("Chapters", chapters)
    if examples:
        nav += "\n" + toctree("Examples", examples)
    nav += "\n" + toctree("Reference", ["api"])
    converted["index"]["cells"].append(markdown_cell(nav))

    for stem, nb in converted.items():
        for number, cell in enumerate(nb["cells"]):
            cell["id"] = f"cell-{number}"
        target = SOURCE / f"{stem}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
    text, missing = api_page(pages, api)
    (SOURCE / "api.md").write_text(text, encoding="utf-8")
    return missing


def copy_assets(proc_dir):
    """Copy the non-notebook files of `_proc/` (images the prose links to, ...)."""
    skip = {"_quarto.yml", "nbdev.yml", "sidebar.yml", "styles.css"}
    for path in proc_dir.rglob("*"):
        rel = path.relative_to(proc_dir)
        if path.is_dir() or path.suffix == ".ipynb" or rel.as_posix() in skip:
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        target = SOURCE / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


# ---------------------------------------------------------------- MathJax and Sphinx


def mathjax_cache():
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "kan_nb" / f"mathjax-{MATHJAX_VERSION}"


def stage_mathjax():
    """Copy MathJax 3 into the static files of the site, installing it with npm once."""
    es5 = os.environ.get("KAN_NB_MATHJAX_ES5")  # a MathJax 3 `es5` folder already on disk
    es5 = Path(es5) if es5 else mathjax_cache() / "node_modules" / "mathjax" / "es5"
    if not (es5 / "tex-chtml.js").exists():
        if os.environ.get("KAN_NB_MATHJAX_ES5"):
            raise SystemExit(f"KAN_NB_MATHJAX_ES5={es5} has no tex-chtml.js: point it at MathJax 3's es5 folder.")
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm was not found, and the site needs a local MathJax copy: install Node.js "
                             "and npm, or set KAN_NB_MATHJAX_ES5 to a MathJax 3 es5 folder.")
        run([npm, "install", "--prefix", mathjax_cache(), "--no-audit", "--no-fund", "--loglevel=error",
             f"mathjax@{MATHJAX_VERSION}"])
    target = STATIC_EXTRA / "mathjax"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for part in MATHJAX_PARTS:
        src = es5 / part
        if src.is_dir():
            shutil.copytree(src, target / part)
        else:
            shutil.copy2(src, target / part)


def build_with_sphinx(out):
    proc_dir = process_notebooks()
    pages = collect_pages(proc_dir)
    api = ApiEntries(ROOT)
    missing = write_source(pages, api)
    copy_assets(proc_dir)
    stage_mathjax()
    log(f"{len(pages)} pages: " + ", ".join(p.stem for p in pages))
    if missing:
        log("public names without an API entry of their own (their chapter needs a `show_doc` "
            "call whose heading is the name): " + ", ".join(missing))
    shutil.rmtree(out, ignore_errors=True)
    run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", DOCS, "-d", BUILD / "doctrees",
         "-E", SOURCE, out])
    (out / ".nojekyll").touch()
    log(f"site written to {out}; open {out / 'index.html'}")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the documentation site.")
    parser.add_argument("--sphinx", action="store_true",
                        help="use the Sphinx build even when quarto is on PATH")
    parser.add_argument("--out", type=Path, default=ROOT / "_docs",
                        help="folder to write the site to (default: _docs)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if shutil.which("quarto") and not args.sphinx:
        build_with_quarto(out)
    else:
        build_with_sphinx(out)


if __name__ == "__main__":
    main()
