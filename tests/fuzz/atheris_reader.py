"""Coverage-guided fuzzing of XmlBatchReader with atheris (optional; not run by pytest or CI).

    python -m pip install atheris
    python tests/fuzz/atheris_reader.py -max_total_time=300 tests/samples

The property: reading any bytes either raises InputError or yields BatchRequests whose problems
are in ``errors``. Any other exception is a crash that atheris reports with the input.
"""

from __future__ import annotations

import io
import sys

import atheris

with atheris.instrument_imports():
    from cw_glbatch import InputError, XmlBatchReader


def one_input(data: bytes) -> None:
    try:
        for batch in XmlBatchReader(io.BytesIO(data)):
            assert all(isinstance(error, str) for error in batch.errors)
    except InputError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
