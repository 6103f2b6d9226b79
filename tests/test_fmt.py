"""workbench.fmt and the one reader of nested field names: formats a person reads."""

from workbench.engine.corpus import flatten_fields
from workbench.fmt import fmt_about, fmt_duration, human_bytes, human_count, label_stride


def test_sizes_and_durations_read_as_people_write_them():
    assert human_bytes(1234567) == "1.2 MB" and human_bytes(999) == "999 B"
    assert [human_count(n) for n in (999, 1234, 106_304, 3_400_000, 2.5e9)] == ["999", "1.2 k", "106.3 k",
                                                                              "3.4 M", "2.5 G"]
    assert [fmt_duration(s) for s in (0, 59.9, 75, 3599, 3725, 36000, -4)] == [
        "0:00", "0:59", "1:15", "59:59", "1:02:05", "10:00:00", "0:00"]
    assert [fmt_about(s) for s in (45, 60, 120, 150, 300)] == [
        "about 45 s", "about 1 min", "about 2 min", "about 2.5 min", "about 5 min"]


def test_nested_fields_are_named_with_dots():
    record = {"text": "hi", "meta": {"lang": "en", "src": {"url": "u"}}, "id": 3}
    assert flatten_fields(record) == {"text": "hi", "meta.lang": "en", "meta.src.url": "u", "id": 3}
    assert list(flatten_fields(record, objects=True)) == ["text", "meta", "meta.lang", "meta.src", "meta.src.url",
                                                          "id"]


def test_labels_are_thinned_to_a_round_stride_that_makes_room():
    """Labels 12 px high on rows 12, 11.9, 5, 1.3 and 0.01 px apart: every label, every 2nd, 3rd,
    10th (9.2 rounds up to a round stride), and past the largest round stride the exact one."""
    assert [label_stride(12, p) for p in (12, 11.9, 5, 1.3)] == [1, 2, 3, 10]
    assert label_stride(12, 20) == 1 and label_stride(7.2 * 100 / 72, 10) == 1  # a label that just fits
    assert label_stride(12, 0.01) == 1200
