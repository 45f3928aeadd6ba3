//! The main example on poem.

fn main() {}
