//! poem adapter for portcullis (under construction in this tree).
