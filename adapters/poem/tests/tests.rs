//! portcullis-poem's tests, one binary: the shared conformance suite, what
//! is particular to poem (nesting, rejections as errors), and the OpenAPI
//! security scheme.

mod conformance;
#[cfg(feature = "openapi")]
mod openapi;
mod poem_specifics;
