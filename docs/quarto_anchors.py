"""Heading anchors that match the Quarto site, for docs/conf.py.

This lives in its own module because Sphinx pickles its configuration, and MyST accepts the
slug function as an import path.
"""
import re


def quarto_slug(title):
    """Make a heading's anchor as Quarto (pandoc) does: `KAN.fit` -> `kan.fit`, `B_batch` -> `b_batch`.

    nbdev's `_modidx.py` and links written for the Quarto site use these anchors.
    """
    slug = re.sub(r"[^\w\s.-]", "", title.strip().lower())
    slug = re.sub(r"\s+", "-", slug)
    return re.sub(r"^[^a-z]+", "", slug)
