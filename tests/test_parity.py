"""With its defaults, nn_core is as accurate as scikit-learn's MLPClassifier on small data.

Iris, wine and breast cancer, the settings of bench/sklearn_parity.py (hidden
(64, 32), Adam 0.001, batch 32, 200 epochs, seeds 0-2): nn_core's mean test
accuracy is within two test samples of MLPClassifier's on each (about 6 s).
"""

import pytest

from bench.sklearn_parity import MAX_GAP_SAMPLES, parity, table


@pytest.mark.slow
def test_default_nn_core_is_within_two_test_samples_of_sklearn():
    rows = parity()
    print("\n" + table(rows))
    assert {r.dataset for r in rows} == {"iris", "wine", "breast cancer"}
    for row in rows:
        assert abs(row.gap_samples) <= MAX_GAP_SAMPLES, table(rows)
