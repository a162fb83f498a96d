"""Coverage-guided fuzzing of XmlBatchReader with atheris (optional; not run by pytest or CI).

    python -m pip install atheris
    python tests/fuzz/atheris_reader.py -max_total_time=300 tests/samples

The properties: reading any bytes either raises InputError or yields BatchRequests whose problems
are in ``errors``; and when the fast path reads the bytes (in chunks of a size taken from the
input), it gives exactly the full reader's batches. Any other exception is a crash that atheris
reports with the input.
"""

from __future__ import annotations

import io
import sys

import atheris

with atheris.instrument_imports():
    from cw_glbatch import InputError, XmlBatchReader
    from cw_glbatch._reader import read_fully
    from cw_glbatch._reader_fast import read_fast


def one_input(data: bytes) -> None:
    try:
        for batch in XmlBatchReader(io.BytesIO(data)):
            assert all(isinstance(error, str) for error in batch.errors)
    except InputError:
        pass
    fast = read_fast(io.BytesIO(data), chunk_size=1 + (data[-1] if data else 0))
    if fast is not None:
        assert list(fast.replay()) == list(read_fully(io.BytesIO(data), "fuzz").replay())


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
