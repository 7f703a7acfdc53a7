"""Canonical mixed-integer linear program and the builder device blocks write into.

A device adds *blocks*: a named variable vector (``battery-soc``, one entry per slot) or a named
constraint block (``battery-soc_balance``, one row per slot), with coefficients given as sparse
triplets over the whole horizon. Nothing here loops over time steps; the assembler stacks the
blocks into one CSR matrix that every solver backend takes as is::

    minimise    cost @ x + offset
    subject to  row_lower <= A @ x <= row_upper
                col_lower <= x <= col_upper,  x[integrality] integer
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

INF = np.inf


@dataclass(frozen=True)
class Block:
    """A named, contiguous range of variables or rows."""

    name: str
    start: int
    size: int

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + self.size)


@dataclass(frozen=True)
class Coeffs:
    """Sparse coefficients of one variable block inside one constraint block.

    ``rows`` index the constraint block's rows, ``cols`` the variable block's entries.
    """

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray


def diag(n: int, coef: float | np.ndarray = 1.0) -> Coeffs:
    """Row ``t`` uses entry ``t`` of the variable with coefficient ``coef[t]``."""
    idx = np.arange(n)
    return Coeffs(idx, idx, np.broadcast_to(np.asarray(coef, dtype=float), (n,)))


def lag(n: int, coef: float | np.ndarray = 1.0) -> Coeffs:
    """Row ``t`` uses entry ``t - 1`` of the variable (rows ``1..n-1``): a first difference."""
    vals = np.broadcast_to(np.asarray(coef, dtype=float), (n,))[1:]
    return Coeffs(np.arange(1, n), np.arange(n - 1), vals)


def pick(rows: np.ndarray, cols: np.ndarray, coef: float | np.ndarray = 1.0) -> Coeffs:
    """Arbitrary entries: row ``rows[k]`` uses variable entry ``cols[k]``."""
    rows = np.asarray(rows, dtype=np.int64)
    return Coeffs(rows, np.asarray(cols, dtype=np.int64), np.broadcast_to(coef, rows.shape))


@dataclass(frozen=True)
class CanonicalProblem:
    """One solver-independent MILP; see the module docstring for its form."""

    cost: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    integrality: np.ndarray
    A: sp.csr_array
    row_lower: np.ndarray
    row_upper: np.ndarray
    variables: tuple[Block, ...]
    constraints: tuple[Block, ...]
    offset: float = 0.0

    @property
    def num_cols(self) -> int:
        return len(self.cost)

    @property
    def num_rows(self) -> int:
        return len(self.row_lower)

    @property
    def num_integers(self) -> int:
        return int(self.integrality.sum())

    def variable(self, name: str) -> Block:
        for block in self.variables:
            if block.name == name:
                return block
        raise KeyError(name)

    def has_variable(self, name: str) -> bool:
        return any(b.name == name for b in self.variables)

    def col_names(self) -> list[str]:
        """``name[t]`` for every column (for .lp/.mps files and diagnostics)."""
        return [f"{b.name}[{t}]" for b in self.variables for t in range(b.size)]

    def row_names(self) -> list[str]:
        return [f"{b.name}[{t}]" for b in self.constraints for t in range(b.size)]

    def with_integrality(self, integrality: np.ndarray) -> CanonicalProblem:
        """The same problem with other integer columns (LP relaxation, re-solve with binaries)."""
        return CanonicalProblem(
            self.cost,
            self.col_lower,
            self.col_upper,
            integrality,
            self.A,
            self.row_lower,
            self.row_upper,
            self.variables,
            self.constraints,
            self.offset,
        )


@dataclass
class ModelBuilder:
    """Collects variable and constraint blocks and assembles a :class:`CanonicalProblem`."""

    n: int
    _vars: list[Block] = field(default_factory=list)
    _rows: list[Block] = field(default_factory=list)
    _col_parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=list
    )
    _coo: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    _row_bounds: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    _num_cols: int = 0
    _num_rows: int = 0
    offset: float = 0.0

    def var(
        self,
        name: str,
        lb: float | np.ndarray = 0.0,
        ub: float | np.ndarray = INF,
        cost: float | np.ndarray = 0.0,
        *,
        integer: bool | np.ndarray = False,
        size: int | None = None,
    ) -> Block:
        """Add a variable block of ``size`` entries (default one per slot)."""
        size = self.n if size is None else size
        block = Block(name, self._num_cols, size)
        parts = (
            np.broadcast_to(np.asarray(lb, dtype=float), (size,)),
            np.broadcast_to(np.asarray(ub, dtype=float), (size,)),
            np.broadcast_to(np.asarray(cost, dtype=float), (size,)),
            np.broadcast_to(np.asarray(integer, dtype=bool), (size,)),
        )
        self._col_parts.append(parts)
        self._vars.append(block)
        self._num_cols += size
        return block

    def rows(
        self,
        name: str,
        terms: list[tuple[Block, Coeffs]],
        lb: float | np.ndarray = -INF,
        ub: float | np.ndarray = INF,
        *,
        size: int | None = None,
    ) -> Block:
        """Add a constraint block ``lb <= sum(coeffs @ var) <= ub`` of ``size`` rows."""
        size = self.n if size is None else size
        block = Block(name, self._num_rows, size)
        for var, c in terms:
            self._coo.append((c.rows + block.start, c.cols + var.start, np.asarray(c.vals)))
        self._row_bounds.append(
            (
                np.broadcast_to(np.asarray(lb, dtype=float), (size,)),
                np.broadcast_to(np.asarray(ub, dtype=float), (size,)),
            )
        )
        self._rows.append(block)
        self._num_rows += size
        return block

    def build(self) -> CanonicalProblem:
        lb, ub, cost, integer = (np.concatenate(p) for p in zip(*self._col_parts, strict=True))
        if self._coo:
            r, c, v = (np.concatenate(p) for p in zip(*self._coo, strict=True))
        else:
            r = c = np.zeros(0, dtype=np.int64)
            v = np.zeros(0)
        A = sp.csr_array((v, (r, c)), shape=(self._num_rows, self._num_cols))
        A.sum_duplicates()
        row_lb, row_ub = (np.concatenate(p) for p in zip(*self._row_bounds, strict=True))
        return CanonicalProblem(
            cost=cost.copy(),
            col_lower=lb.copy(),
            col_upper=ub.copy(),
            integrality=integer.copy(),
            A=A,
            row_lower=row_lb.copy(),
            row_upper=row_ub.copy(),
            variables=tuple(self._vars),
            constraints=tuple(self._rows),
            offset=self.offset,
        )
