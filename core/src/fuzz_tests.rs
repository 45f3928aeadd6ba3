//! Property and fuzz harnesses over the parsers that take outside input.
