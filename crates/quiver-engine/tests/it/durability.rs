//! Recovery: WAL replay, crashes, corrupt files.
