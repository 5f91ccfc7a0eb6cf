"""scikit-learn's own estimator test suite."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from nn_core import NeuralNetworkClassifier

# Every check must pass; none is marked as an expected failure.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks([NeuralNetworkClassifier(random_state=0)],
                         expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
