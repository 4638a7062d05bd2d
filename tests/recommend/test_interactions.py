"""Helpers that read interaction matrices straight from their CSR arrays."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from rapport.recommend.interactions import row_entries, weighted_rows


@st.composite
def matrices_and_rows(draw: st.DrawFn) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    shape = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    density = draw(st.floats(0.0, 1.0))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    matrix = sparse.random(
        *shape, density=density, format="csr", dtype=np.float32, random_state=rng
    )
    chosen = np.unique(rng.integers(0, shape[0], size=draw(st.integers(0, shape[0]))))
    weights = rng.random(len(chosen)).astype(np.float32)
    return matrix, chosen.astype(np.int32), weights


@settings(max_examples=200, deadline=None)
@given(matrices_and_rows())
def test_weighted_rows_is_the_one_row_sparse_product(case) -> None:  # type: ignore[no-untyped-def]
    matrix, chosen, weights = case
    history = sparse.csr_matrix(
        (weights, chosen, [0, len(chosen)]), shape=(1, matrix.shape[0]), dtype=np.float32
    )
    expected = (history @ matrix).toarray()[0]
    np.testing.assert_allclose(weighted_rows(matrix, chosen, weights), expected, rtol=1e-5)


def test_row_entries_are_the_rows_columns_and_values() -> None:
    matrix = sparse.csr_matrix(np.asarray([[0, 2, 0, 3], [0, 0, 0, 0], [5, 0, 0, 0]], np.float32))
    columns, values = row_entries(matrix, 0)
    assert columns.tolist() == [1, 3]
    assert values.tolist() == [2.0, 3.0]
    assert row_entries(matrix, 1)[0].tolist() == []
