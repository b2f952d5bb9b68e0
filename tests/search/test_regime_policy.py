"""The regime policy: table 7's rows as a veto that the sweep's own strong trials lift."""

from __future__ import annotations

from nonbinary_ft.search.regime_policy import RegimePolicy

POORLY_SPACE = {
    "name": "fits_poorly",
    "parameters": {
        "reinit_layers": {"type": "fixed", "value": 1},
        "l2sp_layers": {"type": "fixed", "value": 0},
        "lr_high": {"type": "float", "low": 0.005, "high": 0.05, "log": True},
    },
}


POORLY_SETTINGS = {
    "reinit_layers": 1,
    "lr_high": 0.01,
    "low_layers": 2,
    "lr_low": 0.004,
    "l2sp_layers": 0,
}


def _document(label="fits_poorly", provisional=False, gap=0.3):
    return {
        "regime": {
            "label": label,
            "provisional": provisional,
            "decided_by": "gap",
            "gap": gap,
            "fisher": 0.8,
        },
        "recommendation": {"settings": POORLY_SETTINGS, "space": POORLY_SPACE},
    }


def test_regime_policy_rules_out_settings_against_two_rows_of_table_7():
    policy = RegimePolicy(_document())
    assert policy.active
    one_row = {**POORLY_SETTINGS, "reinit_layers": 3}
    assert policy.rules_out(one_row) is None
    two_rows = {**one_row, "l2sp_layers": "all"}
    reason = policy.rules_out(two_rows)
    assert "2 of 3 rows" in reason and "fits_poorly" in reason and "gap +0.300" in reason
    assert "reinit_layers=3" in reason and "l2sp_layers='all'" in reason
    three_rows = {**two_rows, "low_layers": 0, "lr_low": None}
    assert "3 of 3 rows" in policy.rules_out(three_rows)
    # L2-SP at strength 0 is no L2-SP: that row agrees.
    assert policy.rules_out({**two_rows, "alpha": 0.0}) is None
    # Learning rates are left to the search: only the layer rows are pruned on.
    assert policy.rules_out({**POORLY_SETTINGS, "lr_high": 0.5, "lr_low": 0.4}) is None
    strict = RegimePolicy(_document(), min_rows=1)
    assert "1 of 3 rows" in strict.rules_out(one_row)


def test_a_strong_trial_in_the_ruled_out_region_reopens_it():
    policy = RegimePolicy(_document(), protect_top_fraction=0.5)
    against = {**POORLY_SETTINGS, "reinit_layers": 3, "l2sp_layers": "all"}
    alike = {**against, "reinit_layers": 2, "lr_high": 0.05}  # same answers on every row
    other = {**against, "low_layers": 0, "lr_low": None}  # different answers: 3 rows against
    running = {"epoch": 1, "status": "running"}
    policy.observe("in_region", against, {**running, "val_accuracy": 0.3})
    policy.observe("inside", POORLY_SETTINGS, {**running, "val_accuracy": 0.6})
    assert policy.rules_out(alike) is not None  # the region's trial ranks below the top half
    policy.observe("in_region", against, {**running, "val_accuracy": 0.9})
    assert policy.rules_out(alike) is None
    assert policy.rules_out(other) is not None
    # Without protection the regime's veto stands whatever the sweep shows.
    strict = RegimePolicy(_document())
    strict.observe("in_region", against, {**running, "val_accuracy": 0.9})
    strict.observe("inside", POORLY_SETTINGS, {**running, "val_accuracy": 0.6})
    assert strict.rules_out(alike) is not None


def test_no_veto_without_decisive_evidence():
    assert RegimePolicy(None).rules_out({"reinit_layers": 3}) is None
    assert not RegimePolicy(_document(label="unclear")).active
    provisional = _document(provisional=True)
    assert not RegimePolicy(provisional).active
    assert RegimePolicy(provisional, prune_on_provisional=True).active
