//! Data diffs between two snapshots (being written).
