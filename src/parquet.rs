//! Parquet export (being written).
