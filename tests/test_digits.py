"""The tutorial's Digits experiment, reproduced with nn_core.

load_digits, StandardScaler, train_test_split(test_size=0.2, random_state=3),
hidden (64, 32), relu, batch 32, 500 epochs. The tutorial initialises with
Xavier/Glorot normal, so these runs do too.
"""

import time

import numpy as np
import pytest

from nn_core import NeuralNetworkClassifier

SEEDS = (0, 1, 2)


def run(split, seed, **kw):
    X_tr, X_te, y_tr, y_te = split
    params = dict(hidden_layer_sizes=(64, 32), activation="relu", batch_size=32, epochs=500,
                  init="glorot_normal", random_state=seed)
    params.update(kw)
    t0 = time.perf_counter()
    clf = NeuralNetworkClassifier(**params).fit(X_tr, y_tr)
    seconds = time.perf_counter() - t0
    return clf.score(X_te, y_te), seconds, clf


@pytest.mark.slow
def test_sgd_tutorial_accuracy_each_seed(digits_split):
    results = [run(digits_split, s, optimizer="sgd", learning_rate=0.01) for s in SEEDS]
    accs = [a for a, _, _ in results]
    print("sgd accuracies", accs, "seconds", [round(t, 2) for _, t, _ in results])
    assert all(a >= 0.965 for a in accs), accs
    clf = results[0][2]
    assert clf.n_iter_ == 500 and clf.status_ == "completed"
    # the evaluation agrees with scikit-learn's metrics on the same predictions
    from sklearn.metrics import f1_score

    X_te, y_te = digits_split[1], digits_split[3]
    rep = clf.evaluate(X_te, y_te)
    assert rep["macro_f1"] == pytest.approx(f1_score(y_te, clf.predict(X_te),
                                                     average="macro"), abs=1e-12)


@pytest.mark.slow
def test_adam_tutorial_accuracy(digits_split):
    accs = [run(digits_split, s, optimizer="adam", learning_rate=0.001)[0] for s in SEEDS]
    print("adam accuracies", accs)
    assert np.mean(accs) >= 0.97, accs
    assert max(accs) >= 0.975, accs
