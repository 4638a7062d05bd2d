"""The return-risk model: calibrated gradient-boosted trees, a calibrated logistic
regression, or the average of the two over basket features, whichever validates better, saved
as plain arrays (``allow_pickle=False``) and explained in short reasons."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from rapport.orders.return_risk.baskets import Basket, LabelledBasket
from rapport.orders.return_risk.features import (
    NUMERIC_FEATURES,
    REASON_GROUPS,
    BasketFeatures,
    BoolArray,
    FloatArray,
    HistoryConfig,
    IntArray,
    ReturnHistory,
)
from rapport.orders.return_risk.reasons import reason_for

MODEL_FORMAT: Final = "rapport.return_risk"
MODEL_VERSION: Final = 3
BOOSTED_TREES: Final = "boosted_trees"
LOGISTIC_REGRESSION: Final = "logistic_regression"
# The two calibrated models above, their probabilities averaged.
BLEND: Final = "blend"
MODEL_KINDS: Final = (BOOSTED_TREES, LOGISTIC_REGRESSION, BLEND)
MODEL_LABELS: Final = {
    BOOSTED_TREES: "boosted trees",
    LOGISTIC_REGRESSION: "logistic regression",
    BLEND: "boosted trees and logistic regression, averaged",
}


# --- model ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BoostingParams:
    """One candidate setting for the gradient-boosted trees."""

    learning_rate: float
    max_iter: int
    max_leaf_nodes: int
    min_samples_leaf: int
    l2_regularization: float


# Light tuning: on Online Retail the shallow, heavily regularised settings validate best, so
# the grid spans that neighbourhood rather than deep trees.
DEFAULT_GRID: Final[tuple[BoostingParams, ...]] = (
    BoostingParams(0.05, 200, 15, 40, 1.0),
    BoostingParams(0.05, 150, 7, 100, 1.0),
    BoostingParams(0.03, 400, 7, 100, 1.0),
    BoostingParams(0.03, 300, 7, 200, 1.0),
)


@dataclass(frozen=True, slots=True)
class FitReport:
    """What :meth:`ReturnRiskModel.fit` tried on its validation window and what it chose.

    ``validation_pr_auc`` and ``validation_brier`` are the boosted trees' settings and
    calibrations; ``candidate_pr_auc`` and ``candidate_brier`` the calibrated candidates
    (boosted trees with their best setting, logistic regression, and the average of the two
    probabilities) on the same window, and ``model_chosen`` the one with the highest PR AUC,
    refitted on the whole training period. ``calibration`` is the trees' calibration
    (the regression's is always sigmoid).
    """

    rows: int
    positives: int
    validation_start: str | None
    validation_pr_auc: dict[str, float]
    validation_brier: dict[str, float]
    params: BoostingParams
    calibration: str
    model_chosen: str = BOOSTED_TREES
    candidate_pr_auc: dict[str, float] = field(default_factory=dict)
    candidate_brier: dict[str, float] = field(default_factory=dict)
    validation_rows: int = 0
    validation_positives: int = 0


@dataclass(frozen=True, slots=True)
class _Forest:
    """Gradient-boosted trees flattened into arrays, scored with numpy alone."""

    baseline: float
    feature: IntArray
    threshold: FloatArray
    missing_left: BoolArray
    left: IntArray
    right: IntArray
    is_leaf: BoolArray
    value: FloatArray
    roots: IntArray

    def raw(self, features: FloatArray) -> FloatArray:
        """Sum of leaf values per row: the classifier's log-odds before calibration."""
        count = features.shape[0]
        out = np.empty(count, dtype=np.float64)
        # Walk all trees at once, a chunk of rows at a time, so memory stays small.
        chunk = max(1, 200_000 // max(1, len(self.roots)))
        for start in range(0, count, chunk):
            block = features[start : start + chunk]
            rows = np.arange(block.shape[0])[:, None]
            node = np.broadcast_to(self.roots, (block.shape[0], len(self.roots))).copy()
            leaf = self.is_leaf[node]
            while not leaf.all():
                x = block[rows, self.feature[node]]
                go_left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
                node = np.where(leaf, node, np.where(go_left, self.left[node], self.right[node]))
                leaf = self.is_leaf[node]
            leaves = self.value[node]
            # Add tree by tree, as scikit-learn does, so scores match it to the last bit.
            stacked = np.concatenate([np.full((block.shape[0], 1), self.baseline), leaves], axis=1)
            out[start : start + chunk] = np.cumsum(stacked, axis=1)[:, -1]
        return out

    def arrays(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        return {
            f"{prefix}baseline": np.array([self.baseline]),
            f"{prefix}feature": self.feature,
            f"{prefix}threshold": self.threshold,
            f"{prefix}missing_left": self.missing_left,
            f"{prefix}left": self.left,
            f"{prefix}right": self.right,
            f"{prefix}is_leaf": self.is_leaf,
            f"{prefix}value": self.value,
            f"{prefix}roots": self.roots,
        }

    @classmethod
    def from_arrays(cls, data: Any, prefix: str) -> _Forest:
        return cls(
            baseline=float(data[f"{prefix}baseline"][0]),
            feature=np.asarray(data[f"{prefix}feature"], dtype=np.int64),
            threshold=np.asarray(data[f"{prefix}threshold"], dtype=np.float64),
            missing_left=np.asarray(data[f"{prefix}missing_left"], dtype=np.bool_),
            left=np.asarray(data[f"{prefix}left"], dtype=np.int64),
            right=np.asarray(data[f"{prefix}right"], dtype=np.int64),
            is_leaf=np.asarray(data[f"{prefix}is_leaf"], dtype=np.bool_),
            value=np.asarray(data[f"{prefix}value"], dtype=np.float64),
            roots=np.asarray(data[f"{prefix}roots"], dtype=np.int64),
        )

    @classmethod
    def from_sklearn(cls, estimator: Any) -> _Forest:
        """Flatten a fitted ``HistGradientBoostingClassifier`` (numeric features only)."""
        parts: dict[str, list[npt.NDArray[Any]]] = {
            name: [] for name in ("feature", "threshold", "missing", "left", "right", "leaf")
        }
        values: list[FloatArray] = []
        roots: list[int] = []
        offset = 0
        for (predictor,) in estimator._predictors:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported")
            roots.append(offset)
            parts["feature"].append(nodes["feature_idx"].astype(np.int64))
            parts["threshold"].append(nodes["num_threshold"].astype(np.float64))
            parts["missing"].append(nodes["missing_go_to_left"].astype(np.bool_))
            parts["left"].append(nodes["left"].astype(np.int64) + offset)
            parts["right"].append(nodes["right"].astype(np.int64) + offset)
            parts["leaf"].append(nodes["is_leaf"].astype(np.bool_))
            values.append(nodes["value"].astype(np.float64))
            offset += len(nodes)
        return cls(
            baseline=float(np.asarray(estimator._baseline_prediction).ravel()[0]),
            feature=np.concatenate(parts["feature"]),
            threshold=np.concatenate(parts["threshold"]),
            missing_left=np.concatenate(parts["missing"]),
            left=np.concatenate(parts["left"]),
            right=np.concatenate(parts["right"]),
            is_leaf=np.concatenate(parts["leaf"]),
            value=np.concatenate(values),
            roots=np.asarray(roots, dtype=np.int64),
        )


@dataclass(frozen=True, slots=True)
class _Calibrator:
    """Isotonic (points to interpolate) or sigmoid (``a``, ``b``) map from log-odds."""

    method: str
    x: FloatArray
    y: FloatArray

    def __call__(self, raw: FloatArray) -> FloatArray:
        if self.method == "isotonic":
            return np.interp(raw, self.x, self.y)
        a, b = float(self.x[0]), float(self.x[1])
        return 1.0 / (1.0 + np.exp(a * raw + b))

    @classmethod
    def from_sklearn(cls, method: str, calibrator: Any) -> _Calibrator:
        if method == "isotonic":
            return cls(
                method,
                np.asarray(calibrator.X_thresholds_, dtype=np.float64),
                np.asarray(calibrator.y_thresholds_, dtype=np.float64),
            )
        ab = np.array([calibrator.a_, calibrator.b_], dtype=np.float64)
        return cls(method, ab, np.zeros(0, dtype=np.float64))

    @classmethod
    def from_arrays(cls, data: Any, prefix: str, method: str) -> _Calibrator:
        return cls(
            method,
            np.asarray(data[f"{prefix}calibration_x"], dtype=np.float64),
            np.asarray(data[f"{prefix}calibration_y"], dtype=np.float64),
        )


@dataclass(frozen=True, slots=True)
class _Linear:
    """A standardised logistic regression as arrays: ``((x - mean) / scale) @ coef + b``."""

    mean: FloatArray
    scale: FloatArray
    coef: FloatArray
    intercept: float

    def raw(self, design: FloatArray) -> FloatArray:
        """Log-odds before calibration, from :func:`_linear_design` rows."""
        return np.asarray(((design - self.mean) / self.scale) @ self.coef + self.intercept)

    def arrays(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        return {
            f"{prefix}mean": self.mean,
            f"{prefix}scale": self.scale,
            f"{prefix}coef": self.coef,
            f"{prefix}intercept": np.array([self.intercept]),
        }

    @classmethod
    def from_arrays(cls, data: Any, prefix: str) -> _Linear:
        return cls(
            mean=np.asarray(data[f"{prefix}mean"], dtype=np.float64),
            scale=np.asarray(data[f"{prefix}scale"], dtype=np.float64),
            coef=np.asarray(data[f"{prefix}coef"], dtype=np.float64),
            intercept=float(data[f"{prefix}intercept"][0]),
        )

    @classmethod
    def from_sklearn(cls, pipeline: Any) -> _Linear:
        scaler, regression = pipeline[0], pipeline[-1]
        return cls(
            mean=np.asarray(scaler.mean_, dtype=np.float64),
            scale=np.asarray(scaler.scale_, dtype=np.float64),
            coef=np.asarray(regression.coef_, dtype=np.float64).ravel(),
            intercept=float(np.asarray(regression.intercept_).ravel()[0]),
        )


def _linear_design(matrix: FloatArray, fill: FloatArray, missing: IntArray) -> FloatArray:
    """The logistic regression's input: each feature with "no history" set to its typical
    value and a signed ``log1p`` (counts and money span orders of magnitude), then one
    0/1 column per feature that can be missing."""
    filled = np.where(np.isnan(matrix), fill, matrix)
    return np.hstack(
        [np.sign(filled) * np.log1p(np.abs(filled)), np.isnan(matrix[:, missing]).astype(float)]
    )


class ReturnRiskModel:
    """Calibrated boosted trees, logistic regression or both averaged, over
    :class:`BasketFeatures`.

    ``fit`` carves the last ``validation_share`` of the training period (by time, not at
    random) off as a validation window. On it, it picks the boosting settings with the best
    PR AUC and isotonic or sigmoid calibration by Brier score, then compares three candidates
    by PR AUC: the calibrated trees, a calibrated logistic regression (sigmoid), and the
    *blend*, the mean of those two probabilities (their errors differ, so the mean ranks
    better than either on Online Retail). The winner (:attr:`kind`) is refitted as
    ``CalibratedClassifierCV`` on the whole training period: ``calibration_folds`` models,
    each calibrated on the fold it did not see, averaged (for the blend, both models). The
    report (:attr:`report`) keeps every candidate's validation figures.

    Parameters
    ----------
    history_config : HistoryConfig, optional
        Used by :meth:`fit` and :meth:`new_history`; saved with the model.
    grid : sequence of BoostingParams, optional
        Candidate settings; :data:`DEFAULT_GRID` when omitted.
    calibration_folds : int, default 5
    validation_share : float, default 0.2
    candidates : sequence of str, optional
        Which of ``"boosted_trees"``, ``"logistic_regression"`` and ``"blend"`` may be
        chosen; all three by default. With too little data for a validation window, the
        first is used.
    linear_c : float, default 0.3
        Inverse L2 strength of the logistic regression (on standardised features).
    threads : int or None, default 1
        OpenMP threads for training. One by default: on tables of a few thousand rows, thread
        start-up costs more than it saves, and on a busy machine spinning threads made fits
        several times slower. ``None`` uses every core. Scoring uses numpy only.
    """

    def __init__(
        self,
        *,
        history_config: HistoryConfig | None = None,
        grid: Sequence[BoostingParams] | None = None,
        calibration_folds: int = 5,
        validation_share: float = 0.2,
        candidates: Sequence[str] = MODEL_KINDS,
        linear_c: float = 0.3,
        threads: int | None = 1,
    ) -> None:
        unknown = set(candidates) - set(MODEL_KINDS)
        if unknown or not candidates:
            raise ValueError(f"candidates must be among {MODEL_KINDS}, got {list(candidates)}")
        self.history_config = history_config or HistoryConfig()
        self.grid = tuple(grid or DEFAULT_GRID)
        self.calibration_folds = calibration_folds
        self.validation_share = validation_share
        self.candidates = tuple(candidates)
        self.linear_c = linear_c
        self.threads = threads
        self.kind: str = self.candidates[0]
        self.channels: tuple[str, ...] = ()
        self.reference: FloatArray = np.zeros(0, dtype=np.float64)
        self.missing: IntArray = np.zeros(0, dtype=np.int64)
        self.report: FitReport | None = None
        # Each used model's folds and their calibrators (only the trees for boosted_trees,
        # only the regression for logistic_regression, both for the blend).
        self._forests: list[_Forest] = []
        self._forest_calibrators: list[_Calibrator] = []
        self._linears: list[_Linear] = []
        self._linear_calibrators: list[_Calibrator] = []

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Column names of the model's input: numeric features, then one column per channel."""
        return (*NUMERIC_FEATURES, *(f"channel={name}" for name in self.channels))

    def new_history(self) -> ReturnHistory:
        """An empty history configured as in training."""
        return ReturnHistory(self.history_config)

    def fit(self, labelled_baskets: Iterable[LabelledBasket], *, seed: int = 0) -> ReturnRiskModel:
        """Build features from past baskets and fit the calibrated model.

        Parameters
        ----------
        labelled_baskets : iterable of LabelledBasket
            Training baskets, any order.
        seed : int, default 0
            Seeds the boosted trees; the same data and seed give the same model.

        Returns
        -------
        ReturnRiskModel
            ``self``.
        """
        items = list(labelled_baskets)
        rows = ReturnHistory.stream(items, self.history_config)
        return self.fit_features(rows, [item.returned for item in items], seed=seed)

    def fit_features(
        self, rows: Sequence[BasketFeatures], returned: Sequence[bool], *, seed: int = 0
    ) -> ReturnRiskModel:
        """Like :meth:`fit`, from features already built by :class:`ReturnHistory`."""
        # threadpoolctl comes with scikit-learn (one of its own requirements).
        from threadpoolctl import threadpool_limits

        if self.threads is None:
            return self._fit(rows, returned, seed=seed)
        with threadpool_limits(limits=self.threads, user_api="openmp"):
            return self._fit(rows, returned, seed=seed)

    def _fit(
        self, rows: Sequence[BasketFeatures], returned: Sequence[bool], *, seed: int
    ) -> ReturnRiskModel:
        from sklearn.calibration import CalibratedClassifierCV  # type: ignore[import-untyped]
        from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]
        from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
        from sklearn.metrics import (  # type: ignore[import-untyped]
            average_precision_score,
            brier_score_loss,
        )
        from sklearn.model_selection import StratifiedKFold  # type: ignore[import-untyped]
        from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
        from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

        if len(rows) != len(returned):
            raise ValueError("need one label per row")
        labels = np.asarray(returned, dtype=np.int64)
        if labels.min(initial=1) == labels.max(initial=0):
            raise ValueError("need both returned and kept baskets to fit")
        self.channels = tuple(sorted({row.channel for row in rows}))
        matrix = self._matrix(rows)
        with warnings.catch_warnings():
            # A feature with no value at all (every customer new, say) has a median of 0.
            warnings.simplefilter("ignore", RuntimeWarning)
            self.reference = np.nan_to_num(np.nanmedian(matrix, axis=0), nan=0.0)
        self.missing = np.flatnonzero(np.isnan(matrix).any(axis=0)).astype(np.int64)

        def boosted(params: BoostingParams) -> Any:
            # Early stopping would carve its own random split; the grid already chooses
            # the number of trees, so switch it off to keep fits reproducible and comparable.
            return HistGradientBoostingClassifier(
                learning_rate=params.learning_rate,
                max_iter=params.max_iter,
                max_leaf_nodes=params.max_leaf_nodes,
                min_samples_leaf=params.min_samples_leaf,
                l2_regularization=params.l2_regularization,
                early_stopping=False,
                random_state=seed,
            )

        def linear() -> Any:
            return make_pipeline(
                StandardScaler(), LogisticRegression(C=self.linear_c, max_iter=2000)
            )

        def calibrated(kind: str, params: BoostingParams, method: str) -> Any:
            # Unshuffled folds over time-ordered rows are contiguous periods: each calibrator
            # sees scores from a model that never trained on that period.
            folds = StratifiedKFold(n_splits=self.calibration_folds, shuffle=False)
            estimator = boosted(params) if kind == BOOSTED_TREES else linear()
            return CalibratedClassifierCV(estimator, method=method, cv=folds, ensemble=True)

        def inputs(kind: str, part: FloatArray) -> FloatArray:
            if kind == BOOSTED_TREES:
                # scikit-learn cannot bin a column with no value at all (no customer has
                # returned anything yet, say); a constant there is never split on.
                empty = np.isnan(part).all(axis=0)
                if not empty.any():
                    return part
                filled = part.copy()
                filled[:, empty] = 0.0
                return filled
            return _linear_design(part, self.reference, self.missing)

        times = np.array([row.placed_at.timestamp() for row in rows])
        order = np.argsort(times, kind="stable")
        matrix, labels, times = matrix[order], labels[order], times[order]
        cut = float(np.quantile(times, 1.0 - self.validation_share))
        train, valid = times < cut, times >= cut
        pr_auc: dict[str, float] = {}
        brier: dict[str, float] = {}
        candidate_pr_auc: dict[str, float] = {}
        candidate_brier: dict[str, float] = {}
        chosen, method, kind = self.grid[0], "sigmoid", self.candidates[0]
        valid_scores: dict[str, FloatArray] = {}
        usable = all(
            part.sum() >= self.calibration_folds and (~part).sum() >= self.calibration_folds
            for part in (labels[train] == 1, labels[valid] == 1)
        )
        if usable:
            fit_x, fit_y, check_y = matrix[train], labels[train], labels[valid]
            if {BOOSTED_TREES, BLEND} & set(self.candidates):
                for params in self.grid:
                    model = boosted(params).fit(inputs(BOOSTED_TREES, fit_x), fit_y)
                    score = model.predict_proba(matrix[valid])[:, 1]
                    pr_auc[_params_key(params)] = float(average_precision_score(check_y, score))
                chosen = max(self.grid, key=lambda params: pr_auc[_params_key(params)])
                calibrated_scores = {}
                for candidate in ("isotonic", "sigmoid"):
                    model = calibrated(BOOSTED_TREES, chosen, candidate).fit(
                        inputs(BOOSTED_TREES, fit_x), fit_y
                    )
                    calibrated_scores[candidate] = model.predict_proba(matrix[valid])[:, 1]
                    brier[candidate] = float(
                        brier_score_loss(check_y, calibrated_scores[candidate])
                    )
                # Ties go to sigmoid: two parameters overfit a small validation window less.
                method = min(("sigmoid", "isotonic"), key=lambda candidate: brier[candidate])
                valid_scores[BOOSTED_TREES] = calibrated_scores[method]
            if {LOGISTIC_REGRESSION, BLEND} & set(self.candidates):
                model = calibrated(LOGISTIC_REGRESSION, chosen, "sigmoid").fit(
                    inputs(LOGISTIC_REGRESSION, fit_x), fit_y
                )
                valid_scores[LOGISTIC_REGRESSION] = model.predict_proba(
                    inputs(LOGISTIC_REGRESSION, matrix[valid])
                )[:, 1]
            if BLEND in self.candidates:
                valid_scores[BLEND] = blend(
                    valid_scores[BOOSTED_TREES], valid_scores[LOGISTIC_REGRESSION]
                )
            for name in self.candidates:
                candidate_pr_auc[name] = float(average_precision_score(check_y, valid_scores[name]))
                candidate_brier[name] = float(brier_score_loss(check_y, valid_scores[name]))
            # The highest validation PR AUC wins; a tie goes to the earlier candidate.
            kind = max(self.candidates, key=lambda name: candidate_pr_auc[name])
        self.kind = kind
        self._forests, self._forest_calibrators = [], []
        self._linears, self._linear_calibrators = [], []
        if kind in (BOOSTED_TREES, BLEND):
            parts = (
                calibrated(BOOSTED_TREES, chosen, method)
                .fit(inputs(BOOSTED_TREES, matrix), labels)
                .calibrated_classifiers_
            )
            self._forests = [_Forest.from_sklearn(part.estimator) for part in parts]
            self._forest_calibrators = [
                _Calibrator.from_sklearn(method, part.calibrators[0]) for part in parts
            ]
        if kind in (LOGISTIC_REGRESSION, BLEND):
            parts = (
                calibrated(LOGISTIC_REGRESSION, chosen, "sigmoid")
                .fit(inputs(LOGISTIC_REGRESSION, matrix), labels)
                .calibrated_classifiers_
            )
            self._linears = [_Linear.from_sklearn(part.estimator) for part in parts]
            self._linear_calibrators = [
                _Calibrator.from_sklearn("sigmoid", part.calibrators[0]) for part in parts
            ]
        self.report = FitReport(
            rows=len(rows),
            positives=int(labels.sum()),
            validation_start=(
                datetime.fromtimestamp(cut, tz=rows[0].placed_at.tzinfo).isoformat()
                if usable
                else None
            ),
            validation_pr_auc=pr_auc,
            validation_brier=brier,
            params=chosen,
            calibration=method if kind != LOGISTIC_REGRESSION else "sigmoid",
            model_chosen=kind,
            candidate_pr_auc=candidate_pr_auc,
            candidate_brier=candidate_brier,
            validation_rows=int(valid.sum()) if usable else 0,
            validation_positives=int(labels[valid].sum()) if usable else 0,
        )
        return self

    def predict_proba(self, basket: Basket, history: ReturnHistory) -> float:
        """Probability that something in ``basket`` will be returned.

        Parameters
        ----------
        basket : Basket
            The basket, not yet recorded in ``history``.
        history : ReturnHistory
            Everything known before the basket (see :meth:`new_history`).

        Returns
        -------
        float
            A calibrated probability in [0, 1].
        """
        return float(self.predict_features([history.features(basket)])[0])

    def predict_proba_batch(self, baskets: Sequence[Basket], history: ReturnHistory) -> list[float]:
        """:meth:`predict_proba` for many baskets; they are scored in time order, returned in
        input order, and none of them is recorded in ``history``."""
        order = sorted(
            range(len(baskets)), key=lambda i: (baskets[i].placed_at, baskets[i].basket_id)
        )
        rows: list[BasketFeatures | None] = [None] * len(baskets)
        for index in order:
            rows[index] = history.features(baskets[index])
        return [float(p) for p in self.predict_features([row for row in rows if row is not None])]

    def predict_features(self, rows: Sequence[BasketFeatures]) -> FloatArray:
        """Calibrated probabilities for feature rows."""
        return self._probabilities(self._matrix(rows))

    def explain(
        self,
        basket: Basket,
        history: ReturnHistory,
        *,
        top: int = 3,
        base_rate: float | None = None,
    ) -> list[str]:
        """The reasons that raise this basket's risk most, as short sentences; with
        ``base_rate`` (the shop's share of orders that come back), a basket scored at or
        below it is said to be low risk instead, with what keeps it low.

        Parameters
        ----------
        basket : Basket
            The basket, not yet recorded in ``history``.
        history : ReturnHistory
            Everything known before the basket.
        top : int, default 3
            At most this many reasons.
        base_rate : float, optional
            The shop's return rate. A basket whose probability is at or below it is never
            explained by what raises its risk (a 2% basket in an 8% shop "often comes back"
            misleads): the first reason says "low risk" and both figures, and the others
            each begin "keeps it low:".

        Returns
        -------
        list of str
            Most important first; empty when nothing raises the risk above typical.
        """
        return self.explain_features(history.features(basket), top=top, base_rate=base_rate)

    def explain_features(
        self, row: BasketFeatures, *, top: int = 3, base_rate: float | None = None
    ) -> list[str]:
        """:meth:`explain` from a feature row.

        Each reason group (customer record, recency, value, size, prices, items, categories,
        channel) is reset in turn to its typical training value; the drop in the model's
        log-odds is that group's contribution. Log-odds rather than calibrated probabilities,
        because isotonic calibration is flat in places and would hide real differences (for
        the blend, the log-odds of its averaged probability).
        """
        self._check_fitted()
        names = self.feature_names
        groups = {
            name: [names.index(feature) for feature in columns]
            for name, columns in REASON_GROUPS.items()
        }
        if self.channels:
            groups["channel"] = list(range(len(NUMERIC_FEATURES), len(names)))
        base = self._matrix([row])
        what_if = np.repeat(base, len(groups) + 1, axis=0)
        for number, columns in enumerate(groups.values(), start=1):
            what_if[number, columns] = self.reference[columns]
        raw = self._raw(what_if)
        lifts = {name: raw[0] - raw[number] for number, name in enumerate(groups, start=1)}
        if base_rate is not None:
            probability = float(self._probabilities(base)[0])
            if probability <= base_rate:
                # What lowers the log-odds most is what keeps this basket low.
                lowering = sorted(
                    (name for name in groups if lifts[name] < -0.02), key=lambda n: lifts[n]
                )
                said = f"low risk: {probability:.1%} against the shop's {base_rate:.1%}"
                kept_low = [f"keeps it low: {reason_for(name, row)}" for name in lowering]
                return [said, *kept_low][:top]
        ranked = sorted((name for name in groups if lifts[name] > 0.02), key=lambda n: -lifts[n])
        return [reason_for(name, row) for name in ranked[:top]]

    def save(self, path: str | Path) -> None:
        """Write the model to ``path`` (an ``.npz`` of plain arrays), replacing it atomically."""
        self._check_fitted()
        report = self.report
        header = {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "features": list(NUMERIC_FEATURES),
            "channels": list(self.channels),
            "history_config": asdict(self.history_config),
            "calibration_folds": self.calibration_folds,
            "validation_share": self.validation_share,
            "kind": self.kind,
            # Per model used: its calibration and number of folds (0 when not used).
            "trees_calibration": _method(self._forest_calibrators),
            "trees_folds": len(self._forests),
            "linear_calibration": _method(self._linear_calibrators),
            "linear_folds": len(self._linears),
            "report": _report_json(report) if report else None,
        }
        arrays: dict[str, npt.NDArray[Any]] = {
            "header": np.array(json.dumps(header, sort_keys=True)),
            "reference": self.reference,
            "missing": self.missing,
        }
        used: tuple[tuple[str, Sequence[_Forest | _Linear], list[_Calibrator]], ...] = (
            ("trees", self._forests, self._forest_calibrators),
            ("linear", self._linears, self._linear_calibrators),
        )
        for name, parts, calibrators in used:
            for number, (part, calibrator) in enumerate(zip(parts, calibrators, strict=True)):
                prefix = f"{name}{number}_"
                arrays.update(part.arrays(prefix))
                arrays[f"{prefix}calibration_x"] = calibrator.x
                arrays[f"{prefix}calibration_y"] = calibrator.y
        target = Path(path)
        # Write beside the target and rename, so a serving process swapping models never
        # reads half a file.
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez_compressed(file, allow_pickle=False, **arrays)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | Path) -> ReturnRiskModel:
        """Read a model written by :meth:`save`.

        Raises
        ------
        ValueError
            When the file is not a Rapport return-risk model of a version this code reads.
        """
        with np.load(Path(path), allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            if header.get("format") != MODEL_FORMAT or header.get("version") != MODEL_VERSION:
                raise ValueError(f"{path} is not a {MODEL_FORMAT} v{MODEL_VERSION} file")
            if tuple(header["features"]) != NUMERIC_FEATURES:
                raise ValueError(f"{path} was written for different features")
            model = cls(
                history_config=HistoryConfig(**header["history_config"]),
                calibration_folds=int(header["calibration_folds"]),
                validation_share=float(header["validation_share"]),
            )
            model.channels = tuple(header["channels"])
            model.kind = str(header["kind"])
            if model.kind not in MODEL_KINDS:
                raise ValueError(f"{path} holds an unknown kind of model: {model.kind}")
            model.reference = np.asarray(data["reference"], dtype=np.float64)
            model.missing = np.asarray(data["missing"], dtype=np.int64)
            for number in range(int(header["trees_folds"])):
                model._forests.append(_Forest.from_arrays(data, f"trees{number}_"))
                model._forest_calibrators.append(
                    _Calibrator.from_arrays(data, f"trees{number}_", header["trees_calibration"])
                )
            for number in range(int(header["linear_folds"])):
                model._linears.append(_Linear.from_arrays(data, f"linear{number}_"))
                model._linear_calibrators.append(
                    _Calibrator.from_arrays(data, f"linear{number}_", header["linear_calibration"])
                )
        report = header.get("report")
        if report:
            model.report = FitReport(**{**report, "params": BoostingParams(**report["params"])})
        return model

    @property
    def kind_label(self) -> str:
        """The chosen model in words, such as "boosted trees" or "logistic regression"."""
        return MODEL_LABELS[self.kind]

    def _check_fitted(self) -> None:
        if not self._forest_calibrators and not self._linear_calibrators:
            raise RuntimeError("fit or load the model first")

    def _matrix(self, rows: Sequence[BasketFeatures]) -> FloatArray:
        numeric = np.array([row.vector() for row in rows], dtype=np.float64).reshape(
            len(rows), len(NUMERIC_FEATURES)
        )
        # One-hot rather than categorical splits: the flattened trees then need only "<=".
        channel = np.array(
            [[row.channel == name for name in self.channels] for row in rows], dtype=np.float64
        ).reshape(len(rows), len(self.channels))
        return np.hstack([numeric, channel])

    def _fold_raw(self, matrix: FloatArray) -> tuple[list[FloatArray], list[FloatArray]]:
        """Each fold's log-odds before calibration: the trees', then the regression's."""
        trees = [forest.raw(matrix) for forest in self._forests]
        linear: list[FloatArray] = []
        if self._linears:
            design = _linear_design(matrix, self.reference, self.missing)
            linear = [part.raw(design) for part in self._linears]
        return trees, linear

    def _raw(self, matrix: FloatArray) -> FloatArray:
        """The log-odds that :meth:`explain_features` compares: a single model's mean raw
        score over its folds, or for the blend the log-odds of its probability."""
        if self.kind == BLEND:
            probability = np.clip(self._probabilities(matrix), 1e-9, 1.0 - 1e-9)
            return np.asarray(np.log(probability / (1.0 - probability)), dtype=np.float64)
        trees, linear = self._fold_raw(matrix)
        raws = trees or linear
        return np.asarray(sum(raws) / len(raws), dtype=np.float64)

    def _probabilities(self, matrix: FloatArray) -> FloatArray:
        self._check_fitted()
        trees, linear = self._fold_raw(matrix)
        found = [
            np.mean([calibrate(raw) for raw, calibrate in zip(raws, calibrators, strict=True)], 0)
            for raws, calibrators in (
                (trees, self._forest_calibrators),
                (linear, self._linear_calibrators),
            )
            if raws
        ]
        return blend(*found) if len(found) == 2 else np.asarray(found[0], dtype=np.float64)


def blend(trees: FloatArray, linear: FloatArray) -> FloatArray:
    """The blend candidate's probability: the mean of the trees' and the regression's."""
    return np.asarray((trees + linear) / 2.0, dtype=np.float64)


def _method(calibrators: Sequence[_Calibrator]) -> str | None:
    return calibrators[0].method if calibrators else None


def _params_key(params: BoostingParams) -> str:
    return (
        f"lr={params.learning_rate} trees={params.max_iter} leaves={params.max_leaf_nodes} "
        f"min_leaf={params.min_samples_leaf} l2={params.l2_regularization}"
    )


def _report_json(report: FitReport) -> dict[str, Any]:
    return {**asdict(report), "params": asdict(report.params)}
