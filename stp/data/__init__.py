"""Benchmarks, corpora and the record types they load into."""

from stp.data.benchmarks import (
    BENCHMARKS,
    DataError,
    Statement,
    load_benchmark,
    load_statements,
)

__all__ = ["BENCHMARKS", "DataError", "Statement", "load_benchmark", "load_statements"]
