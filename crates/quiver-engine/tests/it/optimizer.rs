//! Seal, merge, vacuum, tiering.
