//! System metrics of a run (being written).
