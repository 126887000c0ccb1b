"""Run the worked-example chapters at the KAN paper's sizes and record their numbers.

Each chapter named on the command line (default: all of them) is executed with KAN_NB_FULL=1. That makes it use
the sizes of the KAN paper (Liu et al. 2024, arXiv:2404.19756): more points, larger grids and more steps, as each
chapter's table lists. The chapter then writes its results to bench/examples_<chapter>.json, and the
committed notebook shows them beside its reduced run.
The executed notebook itself is discarded, so the committed chapter keeps its reduced-size outputs.

    python bench/examples_full.py [scaling_laws special_functions feynman pde] [--timeout 36000]

Paper-size runs take from minutes to hours each on a two-core machine. They run one after the other, single-threaded.
"""
import argparse
import os
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import nbformat
from nbclient import NotebookClient

NBS = Path(__file__).resolve().parent.parent / "nbs"
CHAPTERS = {"scaling_laws": "21_scaling_laws.ipynb", "special_functions": "22_special_functions.ipynb",
            "feynman": "23_feynman.ipynb", "pde": "26_pde.ipynb"}


def run_chapter(name, timeout):
    "Execute one chapter with KAN_NB_FULL=1 in the nbs folder and return the wall time in seconds"
    nb = nbformat.read(NBS / CHAPTERS[name], as_version=4)
    os.environ["KAN_NB_FULL"] = "1"
    start = time.time()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NBS)}}).execute()
    return time.time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("chapters", nargs="*", default=list(CHAPTERS), choices=list(CHAPTERS),
                        help="chapters to run at paper size (default: all)")
    parser.add_argument("--timeout", type=int, default=36000, help="time limit per notebook cell, in seconds")
    args = parser.parse_args()
    for name in args.chapters:
        seconds = run_chapter(name, args.timeout)
        print(f"{name}: {seconds / 60:.1f} min, results in bench/examples_{name}.json", flush=True)


if __name__ == "__main__":
    main()
