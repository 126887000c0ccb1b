"Fixtures shared by the test files."
import numpy as np
import pytest


@pytest.fixture
def check_finite_differences():
    "A function that asserts that `g`, the gradient of `f` at `v`, matches central differences along `indices`"

    def check(f, v, g, indices, h, atol, order=2):
        for idx in indices:
            e = np.zeros_like(v)
            e[idx] = h
            if order == 2:
                fd = (f(v + e) - f(v - e)) / (2 * h)
            else:  # fourth order: error O(h^4) instead of O(h^2)
                fd = (8 * (f(v + e) - f(v - e)) - (f(v + 2 * e) - f(v - 2 * e))) / (12 * h)
            assert abs(g[idx] - fd) < atol, (idx, g[idx], fd)

    return check
