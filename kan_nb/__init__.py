"Kolmogorov-Arnold Networks in numpy + autograd, written as a notebook textbook."
__version__ = "0.1.0"

# Importing every chapter's module attaches its methods to `KAN` (they are added with fastcore's `@patch`).
from kan_nb.network import KAN, create_kan
from kan_nb.training import create_dataset
from kan_nb import examples
from kan_nb import io
from kan_nb import symbolic
from kan_nb import regularization
from kan_nb import pruning
from kan_nb import plotting
from kan_nb import grid
