"""Formula injection (exporters._safety): text a spreadsheet would run is neutralised, numbers are not."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporters._safety import neutralise_batch, neutralise_header, neutralise_text
from tests.exporters._writer_samples import INJECTION


@pytest.mark.parametrize(("raw", "expected"), INJECTION.items())
def test_neutralise_text(raw: str, expected: str) -> None:
    assert neutralise_text(raw) == expected


def test_neutralise_header() -> None:
    assert neutralise_header(["=cmd", "qty"]) == ["'=cmd", "qty"]


# No deadline: the first example pays pyarrow's one-off imports, which on a busy machine exceed 200 ms.
@settings(deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from("=+-@\t\r|'a ë北1"), max_size=6))))
def test_neutralise_batch_matches_text_rule(values: list[str | None]) -> None:
    for type_ in (pa.string(), pa.large_string()):
        batch = pa.record_batch([pa.array(values, type_)], names=["s"])
        out = neutralise_batch(batch).column(0).to_pylist()
        assert out == [None if v is None else neutralise_text(v) for v in values]


def test_neutralise_batch_leaves_numbers_and_handles_dictionaries() -> None:
    batch = pa.record_batch(
        [pa.array([-5, 3]), pa.array([-1.5, 2.0]), pa.array(["=a", "b"]).dictionary_encode()],
        names=["i", "f", "d"],
    )
    out = neutralise_batch(batch)
    assert out.column(0).to_pylist() == [-5, 3]
    assert out.column(1).to_pylist() == [-1.5, 2.0]
    assert pa.types.is_dictionary(out.schema.field("d").type)
    assert out.column(2).to_pylist() == ["'=a", "b"]
