//! # regiment-tower
//!
//! Replacement criteria for regiment workers as tower layers. The layers themselves
//! (`MemoryFootprint`, `RequestCount`, custom criteria) are being written; this crate compiles
//! so that the workspace does.

#![warn(missing_docs)]

pub use regiment_core;
