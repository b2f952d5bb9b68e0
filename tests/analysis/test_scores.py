"""Transferability scores: each against an independent computation, then the common contract."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize
from scipy.spatial.distance import cdist
from sklearn.covariance import LedoitWolf
from sklearn.covariance import ledoit_wolf_shrinkage as sklearn_ledoit_wolf_shrinkage
from sklearn.datasets import make_swiss_roll

from nonbinary_ft.analysis.scores import (
    LEEP,
    NCE,
    EMDSimilarity,
    FisherScore,
    HScore,
    IntrinsicDimension,
    LogME,
    RSADelta,
    ScoreNotComputable,
    SourceContext,
    SumOfSquares,
    compute_scores,
    get_score,
    list_scores,
    register,
    twonn_dimension,
)
from nonbinary_ft.analysis.scores.fisher import ledoit_wolf_shrinkage
from nonbinary_ft.errors import AnalysisError, ConfigError


def blobs(n_per_class: int, n_classes: int, dim: int, spread: float, seed: int = 0):
    """Gaussian classes whose means are ``spread`` apart along random directions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * spread
    labels = np.repeat(np.arange(n_classes), n_per_class)
    features = centres[labels] + rng.normal(size=(labels.size, dim))
    return features, labels


# --- Fisher ------------------------------------------------------------------------------


def fisher_direct(features, labels, shrunk_within=None, shrinkage=0.0):
    """Tr(Sw^-1 Sb) / K from explicitly summed scatter matrices, per sample in a loop."""
    n, d = features.shape
    overall = features.mean(axis=0)
    within = np.zeros((d, d))
    between = np.zeros((d, d))
    classes = np.unique(labels)
    for c in classes:
        members = features[labels == c]
        centre = members.mean(axis=0)
        for row in members:
            within += np.outer(row - centre, row - centre)
        between += len(members) * np.outer(centre - overall, centre - overall)
    within /= n
    between /= n
    if shrunk_within is None:
        shrunk_within = (1 - shrinkage) * within + shrinkage * np.trace(within) / d * np.eye(d)
    return np.trace(scipy.linalg.solve(shrunk_within, between)) / len(classes)


# 45 samples in 4 dimensions, and 15 in 40, where the score is computed in the samples'
# dual (Woodbury).
@pytest.mark.parametrize(
    ("shrinkage", "n_per_class", "dim", "seed"),
    [(0.0, 15, 4, 0), (0.3, 15, 4, 0), (0.3, 5, 40, 2), (1.0, 5, 40, 2)],
    ids=["n>d-no-shrinkage", "n>d", "n<d", "n<d-identity"],
)
def test_fisher_matches_explicit_scatter_matrices(shrinkage, n_per_class, dim, seed):
    x, y = blobs(n_per_class=n_per_class, n_classes=3, dim=dim, spread=1.5, seed=seed)
    score = FisherScore(shrinkage=shrinkage).fit(x, y).score_
    assert score == pytest.approx(fisher_direct(x, y, shrinkage=shrinkage), rel=1e-9)


@pytest.mark.parametrize(
    ("n_per_class", "dim", "seed"), [(10, 6, 1), (5, 40, 3)], ids=["n>d", "n<d"]
)
def test_fisher_ledoit_wolf_matches_sklearn_estimator(n_per_class, dim, seed):
    x, y = blobs(n_per_class=n_per_class, n_classes=3, dim=dim, spread=1.0, seed=seed)
    residuals = x.copy()
    for c in np.unique(y):
        residuals[y == c] -= x[y == c].mean(axis=0)
    shrunk = LedoitWolf(assume_centered=True).fit(residuals).covariance_
    score = FisherScore().fit(x, y).score_
    assert score == pytest.approx(fisher_direct(x, y, shrunk_within=shrunk), rel=1e-9)


@pytest.mark.parametrize(("n", "d"), [(30, 8), (8, 30), (10, 1)])
def test_ledoit_wolf_shrinkage_from_either_gram_matches_sklearn(n, d):
    x = np.random.default_rng(4).normal(size=(n, d)) @ np.diag(np.linspace(0.2, 3.0, d))
    expected = sklearn_ledoit_wolf_shrinkage(x, assume_centered=True)
    assert ledoit_wolf_shrinkage(x, x.T @ x) == pytest.approx(expected, rel=1e-12)
    assert ledoit_wolf_shrinkage(x, x @ x.T) == pytest.approx(expected, rel=1e-12)


def test_fisher_higher_for_separated_classes():
    separated = FisherScore().fit(*blobs(20, 3, 5, spread=5.0)).score_
    overlapping = FisherScore().fit(*blobs(20, 3, 5, spread=0.3)).score_
    assert separated > 10 * overlapping


def test_fisher_class_with_one_sample_is_not_computable():
    x, y = blobs(5, 2, 3, spread=1.0)
    x = np.vstack([x, np.ones((1, 3))])
    y = np.append(y, 7)
    with pytest.raises(ScoreNotComputable, match=r"one sample \(class 7\)"):
        FisherScore().fit(x, y)


def test_fisher_without_shrinkage_on_too_few_samples_is_not_computable():
    x, y = blobs(3, 2, 10, spread=1.0)
    with pytest.raises(ScoreNotComputable, match="singular"):
        FisherScore(shrinkage=0).fit(x, y)
    assert np.isfinite(FisherScore().fit(x, y).score_)


@pytest.mark.parametrize("shrinkage", [1.5, -0.1, "oas", True])
def test_fisher_rejects_bad_shrinkage(shrinkage):
    with pytest.raises(ConfigError, match="FisherScore.shrinkage"):
        FisherScore(shrinkage=shrinkage).fit(*blobs(5, 2, 3, spread=1.0))


# --- EMD ---------------------------------------------------------------------------------


def emd_by_linprog(source_means, source_weights, target_means, target_weights):
    """The transport problem as an explicit linear programme."""
    cost = cdist(source_means, target_means)
    m, n = cost.shape
    rows = np.kron(np.eye(m), np.ones((1, n)))  # sum_j f_ij = a_i
    cols = np.kron(np.ones((1, m)), np.eye(n))  # sum_i f_ij = b_j
    result = scipy.optimize.linprog(
        cost.ravel(),
        A_eq=np.vstack([rows, cols]),
        b_eq=np.concatenate([source_weights, target_weights]),
        bounds=(0, None),
        method="highs",
    )
    assert result.success
    return result.fun


def test_emd_matches_linear_programme():
    rng = np.random.default_rng(3)
    source_labels = np.repeat([0, 1, 2, 3], [5, 10, 3, 2])
    source = rng.normal(size=(20, 5)) * 10 + source_labels[:, None] * 4
    target_labels = np.repeat([0, 1, 2], [6, 2, 4])
    target = rng.normal(size=(12, 5)) * 10 + 30
    source_means = np.array([source[source_labels == c].mean(0) for c in range(4)])
    target_means = np.array([target[target_labels == c].mean(0) for c in range(3)])
    expected = emd_by_linprog(
        source_means, np.array([5, 10, 3, 2]) / 20, target_means, np.array([6, 2, 4]) / 12
    )
    context = SourceContext(source_features=source, source_labels=source_labels)
    score = EMDSimilarity().fit(target, target_labels, context)
    assert score.emd_ == pytest.approx(expected, rel=1e-7)
    assert score.score_ == pytest.approx(np.exp(-0.01 * expected), rel=1e-7)
    assert 0.0 < score.score_ < 0.9  # a test that exp(-gamma * EMD) is not ~1
    assert EMDSimilarity(gamma=0.1).fit(target, target_labels, context).score_ == pytest.approx(
        np.exp(-0.1 * expected), rel=1e-7
    )


def test_emd_dimension_mismatch_names_both():
    x, y = blobs(4, 2, 5, spread=1.0)
    context = SourceContext(source_features=np.ones((4, 7)), source_labels=np.arange(4))
    with pytest.raises(AnalysisError, match=r"7 dimensions.*have 5"):
        EMDSimilarity().fit(x, y, context)


def test_emd_without_source_sample_says_what_is_needed():
    with pytest.raises(ScoreNotComputable, match=r"analysis\.source_sample"):
        EMDSimilarity().fit(*blobs(4, 2, 5, spread=1.0))


# --- LogME -------------------------------------------------------------------------------


def log_evidence(features, target, alpha, beta):
    """log N(y; 0, I / beta + F F^T / alpha), the marginal likelihood of Bayesian regression."""
    n = features.shape[0]
    covariance = np.eye(n) / beta + features @ features.T / alpha
    _, logdet = np.linalg.slogdet(covariance)
    return -0.5 * (n * np.log(2 * np.pi) + logdet + target @ np.linalg.solve(covariance, target))


def logme_by_direct_maximisation(features, labels):
    evidences = []
    for c in np.unique(labels):
        target = (labels == c).astype(float)

        def loss(log_params, target=target):
            return -log_evidence(features, target, *np.exp(log_params))

        best = min(
            (
                scipy.optimize.minimize(
                    loss, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10}
                )
                for start in ([0.0, 0.0], [2.0, 2.0], [-2.0, 1.0])
            ),
            key=lambda result: result.fun,
        )
        evidences.append(-best.fun / len(labels))
    return float(np.mean(evidences))


def test_logme_matches_direct_maximisation_of_evidence():
    # Separated classes, so that every class's evidence peaks inside (alpha, beta) > 0.
    x, y = blobs(n_per_class=15, n_classes=3, dim=3, spread=2.0, seed=2)
    assert LogME().fit(x, y).score_ == pytest.approx(logme_by_direct_maximisation(x, y), abs=1e-4)


def test_logme_with_more_dimensions_than_samples_uses_the_exact_determinant():
    # Rank 4 features in 25 dimensions for 18 samples: only the 4 seen directions may enter
    # the log-determinant, else the value is off by (25 - 4) / (2 N) * log(alpha), about 4.
    z, y = blobs(n_per_class=6, n_classes=3, dim=4, spread=2.0, seed=2)
    x = z @ np.random.default_rng(2).normal(size=(4, 25))
    assert LogME().fit(x, y).score_ == pytest.approx(logme_by_direct_maximisation(x, y), abs=1e-4)


def test_logme_higher_for_separable_than_random_labels():
    x, y = blobs(30, 3, 6, spread=4.0)
    shuffled = np.random.default_rng(0).permutation(y)
    assert LogME().fit(x, y).score_ > LogME().fit(x, shuffled).score_ + 0.1


# --- LEEP and NCE: 4 target images, 2 source classes, 2 target classes --------------------

HAND_PROBS = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
HAND_LABELS = np.array([0, 1, 1, 1])
HAND_FEATURES = np.arange(8, dtype=float).reshape(4, 2)


def test_leep_hand_computed():
    # P(y, z) = sum of theta_z over images of class y, / 4:
    #   P(0,0) = 0.9/4 = 0.225, P(0,1) = 0.025, P(1,0) = 1.5/4 = 0.375, P(1,1) = 0.375
    # P(z=0) = 0.6, P(z=1) = 0.4, so P(0|0) = 0.375, P(1|0) = 0.625, P(0|1) = 0.0625,
    # P(1|1) = 0.9375. Expected empirical prediction of each image's own label:
    eep = [
        0.9 * 0.375 + 0.1 * 0.0625,  # 0.34375
        0.8 * 0.625 + 0.2 * 0.9375,  # 0.6875
        0.3 * 0.625 + 0.7 * 0.9375,  # 0.84375
        0.4 * 0.625 + 0.6 * 0.9375,  # 0.8125
    ]
    context = SourceContext(source_probs=HAND_PROBS)
    score = LEEP().fit(HAND_FEATURES, HAND_LABELS, context).score_
    assert score == pytest.approx(np.mean(np.log(eep)), rel=1e-12)
    assert score == pytest.approx(-0.4550, abs=1e-4)


def test_nce_hand_computed():
    # argmax: z = [0, 0, 1, 1]; joint P(y=0,z=0) = P(y=1,z=0) = 1/4, P(y=1,z=1) = 1/2;
    # P(0|0) = P(1|0) = 1/2, P(1|1) = 1: NCE = 2 * 1/4 * log(1/2) + 1/2 * log 1 = -log(2)/2.
    context = SourceContext(source_probs=HAND_PROBS)
    score = NCE().fit(HAND_FEATURES, HAND_LABELS, context).score_
    assert score == pytest.approx(-np.log(2) / 2, rel=1e-12)


def test_nce_is_zero_when_source_prediction_determines_label():
    context = SourceContext(source_probs=HAND_PROBS)
    assert NCE().fit(HAND_FEATURES, np.array([0, 0, 1, 1]), context).score_ == 0.0


@pytest.mark.parametrize(
    ("probs", "match"),
    [
        (HAND_PROBS * 3, "sum to 1"),
        (HAND_PROBS - 0.5, "negative"),
        (HAND_PROBS[:3], "one row per target image"),
    ],
)
def test_source_probs_that_are_not_probabilities_are_rejected(probs, match):
    with pytest.raises(AnalysisError, match=match):
        LEEP().fit(HAND_FEATURES, HAND_LABELS, SourceContext(source_probs=probs))


# --- H-score -----------------------------------------------------------------------------


def test_h_score_hand_computed():
    # f = 0, 2, 4, 6 with classes {0, 2} and {4, 6}: var(f) = (9+1+1+9)/4 = 5; the class
    # means 1, 1, 5, 5 have variance 4; H = 4/5.
    features = np.array([[0.0], [2.0], [4.0], [6.0]])
    assert HScore().fit(features, np.array([0, 0, 1, 1])).score_ == pytest.approx(0.8)


def test_h_score_matches_direct_formula():
    x, y = blobs(12, 3, 4, spread=1.0, seed=4)
    conditional = np.array([x[y == c].mean(axis=0) for c in y])
    # np.cov divides by N - 1 and the pseudo-inverse is numpy's: both cancel or agree.
    expected = np.trace(np.linalg.pinv(np.cov(x.T)) @ np.cov(conditional.T))
    assert HScore().fit(x, y).score_ == pytest.approx(expected, rel=1e-9)


def test_h_score_with_fewer_samples_than_dimensions_matches_direct_formula():
    x, y = blobs(6, 3, 30, spread=1.0, seed=5)  # 18 samples: a rank-17 covariance
    conditional = np.array([x[y == c].mean(axis=0) for c in y])
    expected = np.trace(np.linalg.pinv(np.cov(x.T), hermitian=True) @ np.cov(conditional.T))
    assert HScore().fit(x, y).score_ == pytest.approx(expected, rel=1e-9)


def test_h_score_ignores_directions_without_variance():
    x, y = blobs(12, 3, 4, spread=1.0, seed=4)
    padded = np.hstack([x, np.full((len(y), 2), 3.0)])  # two constant features
    assert HScore().fit(padded, y).score_ == pytest.approx(HScore().fit(x, y).score_, rel=1e-9)


# --- RSA delta and sum of squares --------------------------------------------------------


def rsa_delta_from_rdm(features, labels):
    rdm = 1.0 - np.corrcoef(features)
    same = labels[:, None] == labels[None, :]
    off_identity = ~np.eye(len(labels), dtype=bool)
    return rdm[~same].mean() - rdm[same & off_identity].mean()


def test_rsa_delta_hand_computed():
    # rho(a, b) = 1, rho(c, d) = -1/2; between: rho(a, c) = rho(b, c) = -1,
    # rho(a, d) = rho(b, d) = 1/2. Within dissimilarities 0 and 1.5 (mean 0.75), between
    # 2, 0.5, 2, 0.5 (mean 1.25): delta = 0.5.
    features = np.array([[1, 2, 3], [2, 4, 6], [3, 2, 1], [1, 3, 2]], dtype=float)
    score = RSADelta().fit(features, np.array([0, 0, 1, 1])).score_
    assert score == pytest.approx(0.5, abs=1e-12)


def test_rsa_delta_matches_explicit_rdm_and_is_invariant_per_sample():
    x, y = blobs(7, 3, 5, spread=1.0, seed=5)
    rng = np.random.default_rng(6)
    score = RSADelta().fit(x, y).score_
    assert score == pytest.approx(rsa_delta_from_rdm(x, y), rel=1e-10)
    # Pearson correlation ignores a positive scale and an offset per sample.
    rescaled = x * rng.uniform(0.1, 10, size=(len(y), 1)) + rng.normal(size=(len(y), 1))
    assert RSADelta().fit(rescaled, y).score_ == pytest.approx(score, rel=1e-10)
    assert -2.0 <= score <= 2.0


def test_rsa_delta_constant_sample_is_not_computable():
    x, y = blobs(3, 2, 4, spread=1.0)
    x[2] = 5.0
    with pytest.raises(ScoreNotComputable, match="row 2"):
        RSADelta().fit(x, y)


def test_sum_of_squares_hand_computed():
    # Centroids 1 and 5, mean 3: SSW = 4 * 1, TSS = 9 + 1 + 1 + 9 = 20, SSB = 2*4 + 2*4 = 16.
    score = SumOfSquares().fit(np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 1, 1]))
    assert (score.ssw_, score.ssb_, score.tss_) == pytest.approx((4.0, 16.0, 20.0))
    assert score.score_ == pytest.approx(0.2)


def test_sum_of_squares_anova_decomposition_and_invariance():
    x, y = blobs(9, 4, 6, spread=1.0, seed=7)
    score = SumOfSquares().fit(x, y)
    assert score.ssw_ + score.ssb_ == pytest.approx(score.tss_, rel=1e-12)
    assert 0.0 <= score.score_ <= 1.0
    rotation, _ = np.linalg.qr(np.random.default_rng(8).normal(size=(6, 6)))
    moved = 3.0 * x @ rotation + 11.0
    assert SumOfSquares().fit(moved, y).score_ == pytest.approx(score.score_, rel=1e-10)


# --- TwoNN intrinsic dimension -----------------------------------------------------------


@pytest.mark.parametrize("d", [2, 5])
def test_twonn_recovers_linear_subspace_dimension(d):
    rng = np.random.default_rng(d)
    basis, _ = np.linalg.qr(rng.normal(size=(20, d)))
    points = rng.normal(size=(1000, d)) @ basis.T + 3.0
    assert twonn_dimension(points) == pytest.approx(d, rel=0.1)


def test_twonn_recovers_curved_two_dimensional_manifolds():
    roll, _ = make_swiss_roll(n_samples=2000, noise=0.0, random_state=0)
    assert twonn_dimension(roll) == pytest.approx(2.0, rel=0.1)
    sphere = np.random.default_rng(9).normal(size=(2000, 3))
    sphere /= np.linalg.norm(sphere, axis=1, keepdims=True)
    assert twonn_dimension(sphere) == pytest.approx(2.0, rel=0.1)


def test_twonn_ignores_duplicates_and_checks_its_arguments():
    rng = np.random.default_rng(10)
    points = rng.normal(size=(500, 3))
    with_copies = np.vstack([points, points[:50]])
    assert twonn_dimension(with_copies) == pytest.approx(twonn_dimension(points[50:]), rel=0.1)
    with pytest.raises(AnalysisError, match="discard_fraction"):
        twonn_dimension(points, discard_fraction=1.0)
    with pytest.raises(AnalysisError, match="at least 3"):
        twonn_dimension(points[:2])


def test_intrinsic_dimension_score_is_twonn_of_the_features():
    x, y = blobs(50, 2, 4, spread=1.0)
    assert IntrinsicDimension().fit(x, y).score_ == twonn_dimension(x)


# --- the contract every registered score must meet ---------------------------------------


@pytest.fixture(scope="module")
def data():
    x, y = blobs(n_per_class=20, n_classes=3, dim=8, spread=1.5, seed=11)
    rng = np.random.default_rng(12)
    context = SourceContext(
        source_probs=rng.dirichlet(np.ones(4), size=len(y)),
        source_features=rng.normal(size=(40, 8)),
        source_labels=rng.integers(0, 5, size=40),
    )
    return x, y, context


ALL_SCORES = list_scores()


def test_every_documented_score_is_registered():
    assert set(ALL_SCORES) == {
        "fisher",
        "emd",
        "logme",
        "leep",
        "nce",
        "h_score",
        "rsa_delta",
        "sum_of_squares",
        "intrinsic_dim",
    }


@pytest.mark.parametrize("name", ALL_SCORES)
def test_fit_returns_self_with_a_finite_deterministic_score(name, data):
    x, y, context = data
    score = get_score(name)()
    assert score.fit(x, y, context) is score
    assert isinstance(score.score_, float) and np.isfinite(score.score_)
    assert get_score(name)().fit(x, y, context).score_ == score.score_
    assert isinstance(score.higher_is_better, bool)
    assert score.requires <= {"source_probs", "source_features"}


@pytest.mark.parametrize("name", ALL_SCORES)
def test_score_is_invariant_to_the_order_of_samples(name, data):
    x, y, context = data
    order = np.random.default_rng(13).permutation(len(y))
    permuted = SourceContext(
        source_probs=context.source_probs[order],
        source_features=context.source_features,
        source_labels=context.source_labels,
    )
    expected = get_score(name)().fit(x, y, context).score_
    assert get_score(name)().fit(x[order], y[order], permuted).score_ == pytest.approx(
        expected, rel=1e-9, abs=1e-12
    )


@pytest.mark.parametrize("name", ALL_SCORES)
def test_score_rejects_malformed_input(name, data):
    x, y, context = data
    score = get_score(name)()
    with_nan = x.copy()
    with_nan[[1, 4, 9], 2] = np.nan
    with pytest.raises(AnalysisError, match="features contain 3 NaN values"):
        score.fit(with_nan, y, context)
    with pytest.raises(AnalysisError, match="at least 2 classes"):
        score.fit(x, np.zeros_like(y), context)
    with pytest.raises(AnalysisError, match="59 labels for 60 feature rows"):
        score.fit(x, y[:-1], context)
    with pytest.raises(AnalysisError, match="2-D"):
        score.fit(x[0], y, context)
    with pytest.raises(AnalysisError, match="integers"):
        score.fit(x, y.astype(float), context)


@pytest.mark.parametrize("name", ALL_SCORES)
def test_score_needs_its_context_and_only_that(name, data):
    x, y, _ = data
    score = get_score(name)()
    if score.requires:
        with pytest.raises(ScoreNotComputable, match="needs"):
            score.fit(x, y)
        with pytest.raises(ScoreNotComputable, match="needs"):
            score.fit(x, y, SourceContext())
    else:
        assert np.isfinite(score.fit(x, y).score_)


def test_compute_scores_reports_reasons_instead_of_numbers(data):
    x, y, context = data
    partial = SourceContext(source_probs=context.source_probs)
    results = compute_scores(x, y, partial)
    assert list(results) == ALL_SCORES
    emd = results["emd"]
    assert emd.value is None and not emd.computed
    assert (
        str(emd) == "not computed: needs a sample of the source data set (analysis.source_sample)"
    )
    for name in set(ALL_SCORES) - {"emd"}:
        assert results[name].computed and results[name].reason is None
        assert results[name].value == get_score(name)().fit(x, y, partial).score_
    assert results["sum_of_squares"].higher_is_better is False
    assert results["fisher"].higher_is_better is True


def test_compute_scores_on_bad_input_and_with_parameters(data):
    x, y, context = data
    x = x.copy()
    x[0, 0] = np.inf
    results = compute_scores(x, y, context, names=["fisher", "nce"])
    assert list(results) == ["fisher", "nce"]
    assert all("infinite" in r.reason for r in results.values())
    tuned = compute_scores(*data, names=["emd"], params={"emd": {"gamma": 0.5}})
    assert tuned["emd"].value == EMDSimilarity(gamma=0.5).fit(*data).score_
    with pytest.raises(AnalysisError, match="Valid parameters: gamma"):
        compute_scores(*data, names=["emd"], params={"emd": {"gama": 0.5}})


def test_unknown_score_name_lists_known_ones(data):
    with pytest.raises(AnalysisError, match="Unknown transferability score 'fishr'") as error:
        get_score("fishr")
    message = str(error.value)
    assert all(name in message for name in ALL_SCORES)
    assert "Did you mean 'fisher'?" in message
    with pytest.raises(AnalysisError, match="Known scores"):
        compute_scores(*data, names=["fisher", "nope"])


def test_register_refuses_a_second_class_under_a_taken_name():
    with pytest.raises(ValueError, match="already registered"):

        @register
        class Impostor(FisherScore):
            name = "fisher"

    assert get_score("fisher") is FisherScore


def test_repr_shows_parameters():
    assert repr(EMDSimilarity(gamma=0.5)) == "EMDSimilarity(gamma=0.5)"
    assert repr(LEEP()) == "LEEP()"
