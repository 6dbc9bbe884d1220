"""Names generated from data values are safe and unique."""

from features.naming import level_columns, slug


def test_slug():
    assert slug("White British") == "white_british"
    assert slug("PHQ-9") == "phq_9"
    assert slug("  Mixed / Other ") == "mixed_other"
    assert slug("") == "value"


def test_level_columns_are_unique_in_level_order():
    assert level_columns("eth", ["A b", "a-b", "a_b", "C"]) == [
        "eth_a_b",
        "eth_a_b_2",
        "eth_a_b_3",
        "eth_c",
    ]
