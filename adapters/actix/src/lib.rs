//! actix-web adapter for portcullis (under construction in this tree).
