"""scikit-learn's own estimator checks over both estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from mlplab import NeuralNetClassifier, NeuralNetRegressor

ESTIMATORS = [NeuralNetClassifier(random_state=0), NeuralNetRegressor(random_state=0)]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
