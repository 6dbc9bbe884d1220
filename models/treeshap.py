"""Exact path-dependent TreeSHAP for shallow XGBoost trees, by table look-up, vectorised over rows.

Why: XGBoost's `pred_contribs` costs 13-16x a plain prediction on the shipped depth-2 boosters,
and every score is explained. This module gives the same numbers (to float32 rounding; it works
in float64) at about the cost of a prediction.

How. Path-dependent TreeSHAP (Lundberg et al., "Consistent individualized feature attribution
for tree ensembles") explains one tree with the Shapley values of the game

    v(S) = sum over leaves l of  value_l * prod over the nodes k on l's path of
           (x goes l's way at k  if feature(k) is in S  else  cover(child on the path) / cover(k)),

so a row enters v only through the direction it takes at each internal node (NaN follows the
node's default direction). A tree with few internal nodes has few direction patterns, and the
SHAP vector of every pattern can be tabulated once per booster (the FastTreeSHAP idea of
precomputing what does not depend on the row). Scoring is then: one float32 comparison per
internal node, a pattern index per tree, and one table look-up per (tree, feature) pair.

The tables ("units") are indexed by the go-left bits of a list of nodes. v is a sum over leaves
and Shapley values are linear in v, so a tree's SHAP vector is the sum of its leaves' shares, and
any set of leaves can share a table over the nodes on their paths. Leaves are taken in order
into a unit while their paths use at most `MAX_UNIT_NODES` (8) nodes together: a tree of depth
<= 3 (<= 7 internal nodes) is one unit of at most 128 patterns, a full depth-4 tree two units
(the root with one side each). Paths longer than `MAX_LEAF_PATH`, categorical splits, vector leaves,
dart and several outputs are refused with `UnsupportedBooster`, and
`models.explain.contributions` then falls back to XGBoost's `pred_contribs`.

Each leaf's game is a product game over the distinct features g on its path:
v_l(S) = value_l * prod_g (B_g if g in S else R_g), where B_g (0/1) says whether the row satisfies
every condition on g along the path and R_g is the product of those nodes' cover ratios (a
feature repeated on a path multiplies, as in TreeSHAP's "unwind"). Its Shapley values are
computed by enumerating subsets, exactly, for each of the 2^u values of B.

Semantics matched to XGBoost (3.x): a row goes left iff float32(x) < split_condition, NaN takes
default_left; the bias column is the base margin (logit(base_score) for logistic objectives, or
the base_margin given at predict time) plus each tree's cover-weighted mean leaf value; by
default all boosted rounds are used (as `Booster.predict` does, whatever best_iteration says),
and `iteration_range=(0, end)` keeps the first `end` rounds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import xgboost

from models.tree_dump import ParsedTree, UnsupportedBooster, base_margin, parse_tree

MAX_UNIT_NODES = 8  # nodes a table is indexed by (256 rows at most; patterns are uint8, so <= 8)
MAX_LEAF_PATH = 5  # longest path covered: its leaf's Shapley values enumerate 4^nodes subsets
_ROW_BLOCK_ELEMENTS = 1 << 19  # rows per block x (tree, feature) pairs: bounds the temporaries
VERIFY_TOLERANCE = 1e-4  # relative to the largest value: far above float32 rounding, far below a wrong split

@dataclass
class _Leaf:
    """A leaf as seen by its unit: the path in unit-input positions, the value and the unit."""

    unit: int
    value: float
    inputs: list[int]  # unit-input position of each node on the path
    went_left: list[bool]
    features: list[int]  # feature of each node on the path
    ratios: list[float]  # cover(child on the path) / cover(node)


def _units(leaves: list[tuple[float, list[tuple[int, bool, float]]]]) -> list[tuple[list[int], list]]:
    """The tree's leaves split into units, in order, each as (its nodes, its leaves): a leaf joins
    the current unit while their paths use at most `MAX_UNIT_NODES` nodes together, so a tree
    with that few internal nodes is one unit, and a full depth-4 tree two (the root and one side)."""
    units: list[tuple[list[int], list]] = []
    nodes: set[int] = set()
    for leaf in leaves:
        path = {k for k, _, _ in leaf[1]}
        if len(path) > MAX_LEAF_PATH:
            raise UnsupportedBooster(f"a path has {len(path)} nodes (more than {MAX_LEAF_PATH})")
        if units and len(nodes | path) <= MAX_UNIT_NODES:
            nodes |= path
            units[-1][1].append(leaf)
        else:
            nodes = set(path)
            units.append(([], [leaf]))
        units[-1] = (sorted(nodes), units[-1][1])
    return units


def _shapley_weights(u: int) -> np.ndarray:
    """M [2^u, u] with phi = v @ M for a game v over subsets (bitmasks) of u players:
    M[S, j] = (|S|-1)!(u-|S|)!/u! if j is in S, else -|S|!(u-|S|-1)!/u!."""
    sizes = np.array([bin(s).count("1") for s in range(1 << u)])
    member = (np.arange(1 << u)[:, None] >> np.arange(u)) & 1
    plus = np.array([math.factorial(max(s - 1, 0)) * math.factorial(u - s) for s in sizes]) / math.factorial(u)
    minus = np.array([math.factorial(s) * math.factorial(max(u - s - 1, 0)) for s in sizes]) / math.factorial(u)
    return np.where(member == 1, plus[:, None], -minus[:, None])


def _product_game_shapley(values: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """phi [n, 2^u, u]: Shapley values of v(S) = value * prod_g (B_g if g in S else R_g) for each
    of n leaves (values [n], ratios R [n, u]) and each satisfaction pattern B (bitmask)."""
    n, u = ratios.shape
    masks = np.arange(1 << u)
    bits = ((masks[:, None] >> np.arange(u)) & 1).astype(bool)  # [2^u, u], for B and for S
    weights = _shapley_weights(u)
    out = np.empty((n, 1 << u, u))
    step = max(1, (1 << 22) // ((1 << (2 * u)) * max(u, 1)))
    for start in range(0, n, step):
        r = ratios[start:start + step]
        # factor[l, B, S, g] = B_g if g in S else R_g
        factor = np.where(bits[None, None, :, :], bits[None, :, None, :], r[:, None, None, :])
        game = factor.prod(axis=3) * values[start:start + step, None, None]
        out[start:start + step] = game @ weights
    return out


class ShallowTreeExplainer:
    """Exact path-dependent TreeSHAP for a booster of shallow trees, precomputed as look-up tables.

    Build once per booster with `from_booster` (a few milliseconds to a second, depending on the
    trees) and reuse: `shap_values(X)` gives the same (shap [n, k], base [n]) as XGBoost's
    `pred_contribs`, in float64.
    """

    def __init__(self, trees: list[ParsedTree], base_margin: float, n_features: int) -> None:
        self.n_features = n_features
        self._tree_base = base_margin
        self._build(trees)

    @classmethod
    def from_booster(
        cls, booster: xgboost.Booster, iteration_range: tuple[int, int] | None = None, verify: bool = False
    ) -> ShallowTreeExplainer:
        """Parse the booster's JSON model and tabulate its trees; raises `UnsupportedBooster` for
        anything not covered (see the module docstring). `iteration_range=(0, end)` keeps the
        first `end` boosted rounds, like `Booster.predict`; the default keeps them all.

        With `verify`, also compare with `pred_contribs` on probe rows that take every node's
        both ways and its missing way (a few milliseconds), and raise `UnsupportedBooster` with
        `unexpected=True` if they differ by more than float32 rounding could explain.
        """
        explainer = cls._parse(booster, iteration_range)
        if verify:
            explainer._verify(booster, iteration_range)
        return explainer

    def _verify(self, booster: xgboost.Booster, iteration_range: tuple[int, int] | None) -> None:
        probe = self._probe_rows()
        probe_matrix = xgboost.DMatrix(probe, missing=np.nan, feature_names=booster.feature_names,
                                       feature_types=booster.feature_types)
        reference = booster.predict(probe_matrix, pred_contribs=True,
                                    iteration_range=iteration_range or (0, 0)).astype(np.float64)
        shap, base = self.shap_values(probe)
        gap = max(np.abs(shap - reference[:, :-1]).max(initial=0.0), np.abs(base - reference[:, -1]).max())
        scale = max(1.0, np.abs(reference).max())
        if not gap <= VERIFY_TOLERANCE * scale:
            raise UnsupportedBooster(f"differs from pred_contribs by {gap:.2e} on probe rows", unexpected=True)

    def _probe_rows(self, n_rows: int = 64) -> np.ndarray:
        """float32 rows whose every value is a split threshold of its feature (goes right), the
        float32 just below one (goes left) or NaN, drawn with a fixed seed."""
        rng = np.random.default_rng(0)
        probe = np.full((n_rows, self.n_features), np.nan, dtype=np.float32)
        node_feature = self._node_row % self.n_features
        for feature in np.unique(node_feature):
            thresholds = self._node_threshold[node_feature == feature]
            below = np.nextafter(thresholds, np.float32(-np.inf))
            choices = np.concatenate([thresholds, below, [np.float32(np.nan)]])
            probe[:, feature] = rng.choice(choices, n_rows)
        return probe

    @classmethod
    def _parse(cls, booster: xgboost.Booster, iteration_range: tuple[int, int] | None) -> ShallowTreeExplainer:
        model = json.loads(bytes(booster.save_raw("json")))
        learner = model["learner"]
        gbm = learner["gradient_booster"]
        if gbm.get("name") != "gbtree":
            raise UnsupportedBooster(f"booster {gbm.get('name')!r} is not covered (gbtree only)")
        forest = gbm["model"]
        if any(group != 0 for group in forest["tree_info"]):
            raise UnsupportedBooster("the booster has more than one output group")
        per_round = int(forest["gbtree_model_param"].get("num_parallel_tree", "1"))
        indptr = forest.get("iteration_indptr") or list(range(0, len(forest["trees"]) + 1, per_round))
        end = len(indptr) - 1
        if iteration_range is not None and tuple(iteration_range) != (0, 0):
            begin, end = iteration_range
            if begin != 0 or not 0 < end <= len(indptr) - 1:
                raise ValueError(f"iteration_range {iteration_range} must be (0, end) with 0 < end <= "
                                 f"{len(indptr) - 1} (pred_contribs supports no other)")
        trees = [parse_tree(t) for t in forest["trees"][: indptr[end]]]
        n_features = int(learner["learner_model_param"]["num_feature"])
        return cls(trees, base_margin(learner), n_features)

    def _build(self, trees: list[ParsedTree]) -> None:
        """Turn the trees into the arrays the kernel reads: node comparisons, units and the
        (unit, feature) pairs' tables, sorted by feature for a segmented sum."""
        node_feature, node_threshold, node_default = [], [], []
        unit_nodes: list[np.ndarray] = []  # global node ids each unit's pattern is built from
        leaves: list[_Leaf] = []
        expected = 0.0
        n_nodes = 0
        for tree in trees:
            n = len(tree.feature)
            for value, path in tree.leaves:
                expected += value * math.prod(ratio for _, _, ratio in path)
            if n == 0:
                continue
            node_feature.append(tree.feature)
            node_threshold.append(tree.threshold)
            node_default.append(tree.default_left)
            for nodes, members in _units(tree.leaves):
                unit = len(unit_nodes)
                unit_nodes.append(n_nodes + np.array(nodes, dtype=np.intp))
                position = {k: i for i, k in enumerate(nodes)}
                for value, path in members:
                    leaves.append(_Leaf(unit, value, [position[k] for k, _, _ in path], [d for _, d, _ in path],
                                        [int(tree.feature[k]) for k, _, _ in path], [r for _, _, r in path]))
            n_nodes += n
        self.expected_value = self._tree_base + expected
        self.tree_expected_value = expected
        feature = np.concatenate([np.empty(0, np.intp), *node_feature])
        default = np.concatenate([np.empty(0, bool), *node_default])
        self._node_threshold = np.concatenate([np.empty(0, np.float32), *node_threshold])
        # NaN is replaced by -inf where the node sends missing values left and by +inf where it
        # sends them right, so one comparison x < threshold decides every node
        self._node_row = feature + np.where(default, 0, self.n_features)
        if feature.size and feature.max() >= self.n_features:
            raise UnsupportedBooster("a split uses a feature beyond num_feature")
        self._tabulate(unit_nodes, leaves)

    def _tabulate(self, unit_nodes: list[np.ndarray], leaves: list[_Leaf]) -> None:
        """Each unit's table of SHAP contributions over its 2^inputs go-left patterns, one column
        per feature its leaves split on, and the (unit, feature) pairs the kernel reads."""
        columns: list[dict[int, int]] = [{} for _ in unit_nodes]  # unit -> feature -> column
        for leaf in leaves:
            for feature in leaf.features:
                columns[leaf.unit].setdefault(feature, len(columns[leaf.unit]))
        sizes = np.array([len(c) << len(nodes) for c, nodes in zip(columns, unit_nodes, strict=True)], dtype=np.intp)
        offset = np.cumsum(sizes) - sizes  # unit's table: columns of 2^inputs values, one after another
        table = np.zeros(int(sizes.sum()))
        groups: dict[tuple[int, int, int], list[tuple[_Leaf, list[int]]]] = {}
        for leaf in leaves:  # grouped by (unit inputs, path length, distinct features) to vectorise
            distinct = list(dict.fromkeys(leaf.features))
            key = (len(unit_nodes[leaf.unit]), len(leaf.features), len(distinct))
            groups.setdefault(key, []).append((leaf, distinct))
        for (n_inputs, length, u), group in groups.items():
            slot = np.array([[distinct.index(f) for f in leaf.features] for leaf, distinct in group])  # [l, d]
            ratios = np.ones((len(group), u))
            for j in range(length):  # R_g: product of the cover ratios of the path's nodes on g
                ratios[np.arange(len(group)), slot[:, j]] *= [leaf.ratios[j] for leaf, _ in group]
            phi = _product_game_shapley(np.array([leaf.value for leaf, _ in group]), ratios)  # [l, 2^u, u]
            inputs = np.array([leaf.inputs for leaf, _ in group])
            went_left = np.array([leaf.went_left for leaf, _ in group])
            patterns = np.arange(1 << n_inputs)
            # satisfied[P, l, j]: in unit pattern P the row takes leaf l's way at its j-th path node
            satisfied = ((patterns[:, None, None] >> inputs) & 1).astype(bool) == went_left
            b_index = np.zeros((patterns.size, len(group)), dtype=np.intp)  # the leaf's B for each P
            for g in range(u):
                b_index |= np.all(satisfied | (slot != g), axis=2).astype(np.intp) << g
            contribution = phi[np.arange(len(group)), b_index]  # [P, l, u]
            column = np.array([[columns[leaf.unit][f] for f in distinct] for leaf, distinct in group])  # [l, u]
            start = np.array([offset[leaf.unit] for leaf, _ in group])[:, None] + (column << n_inputs)
            where = start[None, :, :] + patterns[:, None, None]
            table += np.bincount(where.ravel(), weights=contribution.ravel(), minlength=table.size)
        self._table = table
        # units in groups of equal input count; the kernel builds one pattern array per group
        order = sorted(range(len(unit_nodes)), key=lambda unit: len(unit_nodes[unit]))
        position = np.empty(len(unit_nodes), dtype=np.intp)
        position[order] = np.arange(len(order))
        self._groups: list[np.ndarray] = []  # [units, L] global node ids, L ascending
        self._n_units = len(unit_nodes)
        for n_inputs in sorted({len(nodes) for nodes in unit_nodes}):
            members = [unit for unit in order if len(unit_nodes[unit]) == n_inputs]
            self._groups.append(np.stack([unit_nodes[unit] for unit in members]).astype(np.intp))
        pairs = []  # (feature, unit position, start of its column), sorted by feature; zero columns left out
        for unit, unit_columns in enumerate(columns):
            height = 1 << len(unit_nodes[unit])
            for feature, c in unit_columns.items():
                base = int(offset[unit]) + c * height
                if table[base:base + height].any():
                    pairs.append((feature, int(position[unit]), base))
        pairs.sort()
        self._pair_unit = np.array([unit for _, unit, _ in pairs], dtype=np.intp)
        self._pair_base = np.array([base for _, _, base in pairs], dtype=np.intp)[:, None]
        pair_feature = np.array([feature for feature, _, _ in pairs], dtype=np.intp)
        self._features, self._starts = np.unique(pair_feature, return_index=True)
        self._ends = np.append(self._starts[1:], pair_feature.size)

    @property
    def n_pairs(self) -> int:
        """(unit, feature) table columns read per row: the kernel's look-ups and additions."""
        return int(self._pair_unit.size)

    def shap_values(
        self, X: np.ndarray, base_margin: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(shap [n, k] float64, base [n] float64) for each row of X, as `pred_contribs` gives
        them (its last column is base). X is compared in float32, like a float32 DMatrix;
        NaN is missing. `base_margin` [n], if given, replaces the booster's base margin (it shifts
        base only, as in XGBoost)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must be [n, {self.n_features}]")
        n = X.shape[0]
        if base_margin is None:
            base = np.full(n, self.expected_value)
        else:
            base = np.asarray(base_margin, dtype=np.float64).reshape(n) + self.tree_expected_value
        if n == 0 or self.n_pairs == 0:
            return np.zeros((n, self.n_features)), base
        shap = np.empty((n, self.n_features))
        block = max(2, min(n, max(16, _ROW_BLOCK_ELEMENTS // self.n_pairs)))
        # Never a one-row block: numpy sums a single row's pairs pairwise along the then contiguous
        # axis, where wider blocks add them in order, so a row's last bit would depend on its batch.
        rows = np.repeat(X, 2, axis=0) if n == 1 else X
        work = _Workspace(block)
        for start in range(0, n, block):
            stop = min(start + block, n)
            first = min(start, rows.shape[0] - 2)
            got = self._block(rows[first:max(stop, first + 2)], work).T
            shap[start:stop] = got[start - first:stop - first]
        return shap, base

    def _block(self, X: np.ndarray, work: _Workspace) -> np.ndarray:
        """[k, rows] SHAP values for one block of rows, in `work`'s reused buffers (fresh
        arrays for every block cost about a third more, in page faults)."""
        k, rows = self.n_features, X.shape[0]
        xt = work.get("xt", (k, rows), np.float32)
        np.copyto(xt, X.T, casting="same_kind")  # float32, as a float32 DMatrix holds it
        stacked = work.get("stacked", (2, k, rows), np.float32)
        np.fmax(xt, np.float32(-np.inf), out=stacked[0])  # NaN -> -inf: goes left (fmax skips NaN)
        np.fmin(xt, np.float32(np.inf), out=stacked[1])  # NaN -> +inf: goes right
        # one comparison per node decides it, NaN included: a node reads the copy for its default
        node_x = work.get("node_x", (self._node_row.size, rows), np.float32)
        np.take(stacked.reshape(2 * k, rows), self._node_row, axis=0, out=node_x, mode="clip")
        go_left = work.get("go_left", node_x.shape, np.bool_)
        np.less(node_x, self._node_threshold[:, None], out=go_left)
        go_left = go_left.view(np.uint8)
        patterns = work.get("patterns", (self._n_units, rows), np.uint8)
        shifted = work.get("shifted", (self._n_units, rows), np.uint8)
        start = 0
        for nodes in self._groups:  # bit i of a unit's pattern: the row goes left at its i-th node
            pattern, bit = patterns[start:start + len(nodes)], shifted[start:start + len(nodes)]
            np.take(go_left, nodes[:, 0], axis=0, out=pattern, mode="clip")
            for i in range(1, nodes.shape[1]):
                np.take(go_left, nodes[:, i], axis=0, out=bit, mode="clip")
                np.left_shift(bit, np.uint8(i), out=bit)
                np.bitwise_or(pattern, bit, out=pattern)
            start += len(nodes)
        pair_pattern = work.get("pair_pattern", (self.n_pairs, rows), np.uint8)
        np.take(patterns, self._pair_unit, axis=0, out=pair_pattern, mode="clip")
        index = work.get("index", (self.n_pairs, rows), np.intp)
        np.add(pair_pattern, self._pair_base, out=index)
        values = work.get("values", (self.n_pairs, rows), np.float64)
        np.take(self._table, index, out=values, mode="clip")
        out = work.get("out", (k, rows), np.float64, zeroed=True)  # features without a table stay 0
        for feature, first, end in zip(self._features, self._starts, self._ends, strict=True):
            np.sum(values[first:end], axis=0, out=out[feature])  # far faster than np.add.reduceat on axis 0
        return out


class _Workspace:
    """Scratch arrays reused across the row blocks of one `shap_values` call, viewed at the
    block's shape (the last block may be shorter)."""

    def __init__(self, block: int) -> None:
        self._block = block
        self._flat: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype, zeroed: bool = False) -> np.ndarray:
        size = math.prod(shape)
        flat = self._flat.get(name)
        if flat is None:
            full = size // shape[-1] * self._block
            flat = self._flat[name] = np.zeros(full, dtype) if zeroed else np.empty(full, dtype)
            view = flat[:size].reshape(shape)
        else:
            view = flat[:size].reshape(shape)
            if zeroed and shape[-1] != self._block:  # a shorter block: the zeros moved
                view[...] = 0
        return view

__all__ = ["MAX_LEAF_PATH", "MAX_UNIT_NODES", "ShallowTreeExplainer", "UnsupportedBooster"]
